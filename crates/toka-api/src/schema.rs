//! What the OpenAPI document says about request bodies and errors, exactly.
//!
//! utoipa describes the response types from the Rust types. The request bodies are
//! written out here as JSON Schema, because their rules are the core's (`toka-types`
//! keeps serde only and no schema derive): an operation is one of eleven shapes tagged by
//! `op`, ids are UUIDs, texts have lengths in characters, byte fields are canonical
//! base64, permission names are ASCII identifiers. Every operation also lists every
//! error status it can answer. A schemathesis run with all checks (a CI test) holds the
//! document to what the server does.

use serde_json::{Value, json};
use toka_types::limits::{
    MAX_AGENT_NAME_CHARS, MAX_APPROVAL_REASON_CHARS, MAX_EXTENSION_FAMILY_BYTES,
    MAX_EXTENSION_PAYLOAD_BYTES, MAX_GRANT_PERMISSIONS, MAX_IDEMPOTENCY_KEY_BYTES, MAX_JTI_BYTES,
    MAX_LEASE_SECS, MAX_MODEL_NAME_CHARS, MAX_MODEL_STEPS_PER_TASK, MAX_OBSERVATION_BYTES,
    MAX_PERMISSION_BYTES, MAX_TASK_DESCRIPTION_CHARS, MAX_TASK_REASON_CHARS, MAX_TASK_RESULT_CHARS,
    MAX_TASK_WAITS, MAX_TOKEN_LIFETIME_SECS, MAX_TOOL_NAME_CHARS,
};

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

/// Canonical standard base64 (padding, zero trailing bits) of at most `bytes` bytes.
fn base64(bytes: usize) -> Value {
    json!({
        "type": "string",
        "maxLength": bytes.div_ceil(3) * 4,
        "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$",
    })
}

fn text(min: usize, max: usize) -> Value {
    json!({"type": "string", "minLength": min, "maxLength": max})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

fn op(name: &str, required: &[&str], mut properties: Value) -> Value {
    properties["op"] = json!({"type": "string", "enum": [name]});
    let mut all = vec!["op"];
    all.extend_from_slice(required);
    object(&all, properties)
}

/// A scope: `*` or an agent id.
fn scope() -> Value {
    json!({"oneOf": [{"type": "string", "enum": ["*"]}, uuid()]})
}

fn permission() -> Value {
    json!({"type": "string", "pattern": format!("^[A-Za-z0-9:._*/-]{{1,{MAX_PERMISSION_BYTES}}}$")})
}

fn tool_name() -> Value {
    json!({"type": "string", "pattern": format!("^[A-Za-z0-9][A-Za-z0-9._-]{{0,{}}}$", MAX_TOOL_NAME_CHARS - 1)})
}

fn hash() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 64})
}

fn wait_secs() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": toka_runtime::tools::MAX_CALL_WAIT.as_secs()})
}

fn call_request() -> Value {
    let mut v = object(
        &["input"],
        json!({
            "agent": {"type": ["string", "null"], "minLength": 1, "maxLength": 1024,
                      "description": "an id, an id prefix, a name or a path such as root/planner (default: the token's subject)"},
            "input": {"description": "any JSON value matching the tool's input schema (at most 1 MiB)"},
            "wait_secs": wait_secs(),
        }),
    );
    v["description"] = json!("Body of `POST /v1/tools/{name}/calls`.");
    v
}

fn approval_request() -> Value {
    let mut v = object(
        &["approve"],
        json!({
            "approve": {"type": "boolean"},
            "reason": text(0, MAX_APPROVAL_REASON_CHARS),
            "input_hash": hash(),
            "wait_secs": wait_secs(),
        }),
    );
    v["description"] = json!("Body of `POST /v1/calls/{id}/approval`.");
    v
}

fn ttl() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": MAX_TOKEN_LIFETIME_SECS})
}

/// The JSON Schema of an operation (`toka_types::Operation`).
pub fn operation() -> Value {
    let task = object(
        &["description"],
        json!({"description": text(1, MAX_TASK_DESCRIPTION_CHARS),
               "waits_for": {"type": "array", "items": uuid(), "maxItems": MAX_TASK_WAITS, "uniqueItems": true},
               "input": {"description": "structured input for the worker: any JSON value, at most 1 MiB compact"}}),
    );
    let agent_spec = object(
        &["name"],
        json!({"name": {"type": "string", "minLength": 1, "maxLength": MAX_AGENT_NAME_CHARS,
                        "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}}),
    );
    let outcome = json!({"oneOf": [
        object(&["status", "result"], json!({"status": {"type": "string", "enum": ["success"]},
            "result": text(0, MAX_TASK_RESULT_CHARS)})),
        object(&["status", "reason"], json!({"status": {"type": "string", "enum": ["failure"]},
            "reason": text(1, MAX_TASK_RESULT_CHARS)})),
    ]});
    json!({
        "description": "What a message asks the kernel to do; the variant is the `op` field.",
        "oneOf": [
            op("schedule_agent_task", &["agent", "task"], json!({"agent": uuid(), "task": task})),
            op("spawn_sub_agent", &["parent", "spec"], json!({"parent": uuid(), "spec": agent_spec})),
            op("emit_observation", &["agent", "data"], json!({"agent": uuid(), "data": base64(MAX_OBSERVATION_BYTES)})),
            op("claim_task", &["agent", "task"], json!({"agent": uuid(), "task": uuid()})),
            op("complete_task", &["agent", "task", "outcome"], json!({"agent": uuid(), "task": uuid(), "outcome": outcome})),
            op("terminate_agent", &["agent"], json!({"agent": uuid()})),
            op("issue_token", &["sub"], json!({
                "sub": uuid(),
                "permissions": {"type": "array", "maxItems": MAX_GRANT_PERMISSIONS, "items": permission()},
                "scope": scope(),
                "ttl_secs": ttl(),
                "budget": object(&[], json!({
                    "model_tokens": {"type": "integer", "minimum": 0, "maximum": i64::MAX},
                    "tool_calls": {"type": "integer", "minimum": 0, "maximum": i64::MAX},
                    "spawns": {"type": "integer", "minimum": 0, "maximum": i64::MAX},
                })),
            })),
            op("claim_next", &["agent"], json!({"agent": uuid()})),
            op("cancel_task", &["agent", "task"], json!({
                "agent": uuid(), "task": uuid(), "reason": text(0, MAX_TASK_REASON_CHARS),
            })),
            op("requeue_task", &["agent", "task"], json!({
                "agent": uuid(), "task": uuid(), "reason": text(0, MAX_TASK_REASON_CHARS),
            })),
            op("revoke_token", &["jti"], json!({"jti": text(1, MAX_JTI_BYTES)})),
            op("renew_token", &[], json!({
                "ttl_secs": {"type": "integer", "minimum": 1, "maximum": MAX_TOKEN_LIFETIME_SECS},
                "permissions": {"type": "array", "maxItems": MAX_GRANT_PERMISSIONS, "items": permission()},
            })),
            op("call_tool", &["agent", "tool", "input"], json!({
                "agent": uuid(),
                "tool": tool_name(),
                "input": {"description": "any JSON value matching the tool's input schema (at most 1 MiB)"},
            })),
            op("decide_approval", &["call", "approve"], json!({
                "call": uuid(),
                "approve": {"type": "boolean"},
                "reason": text(0, MAX_APPROVAL_REASON_CHARS),
                "input_hash": hash(),
            })),
            op("designate_planner", &["agent", "jti"], json!({
                "agent": uuid(),
                "jti": text(1, MAX_JTI_BYTES),
                "model": text(1, MAX_MODEL_NAME_CHARS),
            })),
            op("heartbeat", &["agent", "task", "lease_secs"], json!({
                "agent": uuid(),
                "task": uuid(),
                "lease_secs": {"type": "integer", "minimum": 1, "maximum": MAX_LEASE_SECS},
            })),
            op("record_model_step", &["agent", "task", "step", "model", "request_hash", "appended", "response"], json!({
                "agent": uuid(),
                "task": uuid(),
                "step": {"type": "integer", "minimum": 1, "maximum": MAX_MODEL_STEPS_PER_TASK},
                "model": text(1, MAX_MODEL_NAME_CHARS),
                "request_hash": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                "appended": {"type": "array", "items": {"type": "object"},
                             "description": "the messages this request added to the conversation"},
                "response": {"type": "object", "description": "the provider's whole response body (with the rest, at most 1 MiB)"},
            })),
            op("extension", &["family", "opcode", "payload"], json!({
                "family": {"type": "string", "pattern": format!("^[a-z0-9._-]{{1,{MAX_EXTENSION_FAMILY_BYTES}}}$")},
                "opcode": {"type": "integer", "minimum": 0, "maximum": 65535},
                "payload": base64(MAX_EXTENSION_PAYLOAD_BYTES),
            })),
        ],
    })
}

fn submit_request() -> Value {
    let mut v = object(
        &["operation"],
        json!({
            "origin": uuid(),
            "operation": {"$ref": "#/components/schemas/Operation"},
        }),
    );
    v["description"] = json!(
        "Body of `POST /v1/messages`: the bearer token is the capability; `origin` defaults to its subject."
    );
    v
}

fn token_request() -> Value {
    let mut v = object(
        &["sub", "permissions"],
        json!({
            "sub": uuid(),
            "permissions": {"type": "array", "maxItems": MAX_GRANT_PERMISSIONS, "items": permission()},
            "scope": scope(),
            "ttl_secs": ttl(),
        }),
    );
    v["description"] = json!("Body of `POST /v1/tokens`: a token attenuated from the bearer's.");
    v
}

fn renew_request() -> Value {
    let mut v = object(
        &[],
        json!({
            "ttl_secs": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TOKEN_LIFETIME_SECS},
            "permissions": {"type": ["array", "null"], "maxItems": MAX_GRANT_PERMISSIONS, "items": permission()},
        }),
    );
    v["description"] =
        json!("Body of `POST /v1/tokens/renew`: the bearer's token renewed (null: the default).");
    v
}

fn claim_next_request() -> Value {
    let mut v = object(
        &[],
        json!({
            "agent": {"type": ["string", "null"], "format": "uuid"},
            "wait_secs": {"type": ["integer", "null"], "minimum": 0, "maximum": crate::claim::MAX_CLAIM_WAIT_SECS},
        }),
    );
    v["description"] = json!("Body of `POST /v1/tasks/claim-next`.");
    v
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
}

/// Puts the request schemas in, types the parameters exactly, and lists every error
/// status each operation can answer.
pub fn complete(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    schemas["Operation"] = operation();
    schemas["SubmitRequest"] = submit_request();
    schemas["TokenRequest"] = token_request();
    schemas["RenewRequest"] = renew_request();
    schemas["ClaimNextRequest"] = claim_next_request();
    schemas["CallRequest"] = call_request();
    schemas["ApprovalRequest"] = approval_request();
    // A call's input is any JSON value; its result is absent until it ends.
    let call = &mut schemas["CallResponse"]["properties"];
    call["input"] = json!({"description": "The exact input (any JSON value)."});
    call["result"] = json!({"description": "What the tool returned, once it did.", "oneOf": [
        {"type": "null"},
        object(&["status", "output"], json!({"status": {"type": "string", "enum": ["ok"]}, "output": {}})),
        object(&["status", "error"], json!({"status": {"type": "string", "enum": ["error"]}, "error": {"type": "string"}})),
    ]});
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, ops) in paths.iter_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            let secured = op.get("security").is_some();
            let mut statuses: Vec<(&str, &str)> = Vec::new();
            if secured {
                statuses.push(("401", "no, or a refused, bearer token"));
            }
            let has_params = op["parameters"].as_array().is_some_and(|p| !p.is_empty());
            if has_params || path.contains('{') {
                statuses.push(("400", "a parameter is not valid"));
            }
            if method == "post" {
                statuses.extend([
                    ("400", "the body is not JSON"),
                    ("413", "the body is larger than server.max_body_bytes"),
                    ("415", "the body is not `application/json`"),
                    ("422", "the body does not match its schema"),
                    ("503", "unavailable: busy, the store is down, or the outcome is unknown; retry after Retry-After"),
                ]);
            }
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params {
                    let name = p["name"].as_str().unwrap_or("").to_string();
                    let name = name.as_str();
                    if ["id", "agent", "after"].contains(&name) {
                        p["schema"] = json!({"type": "string", "format": "uuid"});
                    }
                    if name == "Idempotency-Key" {
                        p["schema"] = json!({"type": "string", "pattern": format!("^[\\x21-\\x7e]{{1,{MAX_IDEMPOTENCY_KEY_BYTES}}}$")});
                    }
                    if name == "wait_secs" {
                        p["schema"] = wait_secs();
                    }
                    if name == "name" && path.starts_with("/v1/tools/") {
                        p["schema"] = tool_name();
                    }
                    if name == "Last-Event-ID" {
                        p["schema"] = json!({"type": "integer", "minimum": 0, "maximum": i64::MAX});
                    }
                }
            }
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                for (status, description) in statuses {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(description));
                }
            }
        }
    }
}

/// The served document names each registered tool's call route with its exact input
/// schema (`/v1/tools/fs.read/calls`), in place of the generic `/v1/tools/{name}/calls`
/// whose `input` no schema can state: what the server accepts is then what the
/// document says, tool by tool. (Tools change only between starts; the document is
/// built at start.)
pub fn per_tool(doc: &mut Value, tools: &[(String, Value)]) {
    let template = "/v1/tools/{name}/calls";
    let Some(generic) = doc["paths"].get(template).cloned() else {
        return;
    };
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    paths.remove(template);
    for (name, input_schema) in tools {
        let mut item = generic.clone();
        if let Some(post) = item.get_mut("post") {
            if let Some(params) = post.get_mut("parameters").and_then(Value::as_array_mut) {
                params.retain(|p| p["name"] != "name");
            }
            let mut body = call_request();
            body["properties"]["input"] = input_schema.clone();
            body["description"] = json!(format!("Body of a call of tool `{name}`."));
            post["requestBody"]["content"]["application/json"]["schema"] = body;
            post["operationId"] = json!(format!("call_tool_{}", name.replace(['.', '-'], "_")));
        }
        paths.insert(format!("/v1/tools/{name}/calls"), item);
    }
}
