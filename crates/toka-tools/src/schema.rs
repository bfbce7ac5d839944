//! [`JsonSchemaCheck`]: the kernel's schema rule, done with the `jsonschema` crate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use toka_kernel::SchemaCheck;

/// Most compiled schemas kept (one per registered tool is the usual need).
const MAX_CACHED: usize = 2048;

/// Compiles each schema once (keyed by its JSON) and validates inputs against it.
/// Deterministic: the crate is built without retrievers, so no `$ref` is fetched.
#[derive(Default)]
pub struct JsonSchemaCheck {
    cache: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl std::fmt::Debug for JsonSchemaCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonSchemaCheck")
    }
}

impl JsonSchemaCheck {
    /// A check with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn validator(&self, schema: &serde_json::Value) -> Result<Arc<jsonschema::Validator>, String> {
        let key = schema.to_string();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&key) {
            return Ok(Arc::clone(v));
        }
        let compiled = Arc::new(jsonschema::validator_for(schema).map_err(|e| e.to_string())?);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&compiled));
        Ok(compiled)
    }
}

impl SchemaCheck for JsonSchemaCheck {
    fn compile(&self, schema: &serde_json::Value) -> Result<(), String> {
        self.validator(schema).map(|_| ())
    }

    fn errors(
        &self,
        schema: &serde_json::Value,
        input: &serde_json::Value,
        limit: usize,
    ) -> Vec<String> {
        match self.validator(schema) {
            Ok(v) => v
                .iter_errors(input)
                .take(limit)
                .map(|e| {
                    let path = e.instance_path().to_string();
                    let at = if path.is_empty() {
                        "/".to_string()
                    } else {
                        path
                    };
                    format!("at {at}: {e}")
                })
                .collect(),
            Err(e) => vec![format!("the tool's schema does not compile: {e}")],
        }
    }
}
