//! Canonical JSON (RFC 8785 for documents whose numbers are integers): object keys sorted by
//! their UTF-16 code units... which for our ASCII keys is byte order; no insignificant whitespace.
//!
//! Sorting is done here, explicitly, so that no feature of serde_json (`preserve_order`) switched
//! on by some other crate can change the bytes of a manifest.

use serde::Serialize;
use serde_json::Value;

/// Serializes `value` as canonical JSON bytes.
pub fn to_vec<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_value(&value, &mut out);
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                write_value(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // serde_json's escaping of strings matches RFC 8785 (short escapes, lowercase \u00xx).
    out.extend_from_slice(
        serde_json::to_string(value)
            .expect("scalar serializes")
            .as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sorted_and_compact() {
        let v = json!({"b": 1, "a": [true, null, "x\n\u{1}"], "A": {"z": 0, "y": -3}});
        let s = String::from_utf8(to_vec(&v).unwrap()).unwrap();
        assert_eq!(
            s,
            r#"{"A":{"y":-3,"z":0},"a":[true,null,"x\n\u0001"],"b":1}"#
        );
    }
}
