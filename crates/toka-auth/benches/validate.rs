#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Cost of one token check: `validate` (cold) and `Verifier::verify` on a cache hit.
//! Run: `cargo bench -p toka-auth`.

use criterion::{Criterion, criterion_group, criterion_main};
use toka_auth::{Claims, KeySet, NoRevocations, SigningKey, Verifier, mint, permissions, validate};
use toka_types::EntityId;

fn bench(c: &mut Criterion) {
    let keys = KeySet::new(SigningKey::hs256("bench", &[9u8; 32]).unwrap());
    let claims = Claims::new(EntityId::from_u128(7), "bench-jti", 1_000, 2_000)
        .with_permissions(permissions::ALL.iter().copied());
    let token = mint(&keys, &claims).unwrap();
    let mut group = c.benchmark_group("token");
    group.bench_function("validate_hs256", |b| {
        b.iter(|| validate(&token, 1_500, &NoRevocations, &keys).unwrap())
    });
    let mut verifier = Verifier::new(keys.clone());
    group.bench_function("verify_hs256_cached", |b| {
        b.iter(|| verifier.verify(&token, 1_500, &NoRevocations).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
