//! The opaque cursors of listed pages: the key of the last item shown, handed out and taken back
//! only for the list that issued it.

use crate::attrs::s;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use psa_domain::ports::PageError;
use std::collections::{BTreeMap, HashMap};

/// Longest cursor accepted.
const MAX_CURSOR_LEN: usize = 600;

/// The opaque cursor of a page: URL-safe base64 of the JSON of the last item's key.
pub(crate) fn encode_cursor(key: &HashMap<String, AttributeValue>) -> String {
    let plain: BTreeMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str())))
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).expect("a string map serialises"))
}

/// The exclusive start key a cursor stands for, if it is one this store handed out for this list:
/// exactly the attributes `names`, `pk` equal to `pk`, `sk` starting with `sk_prefix`.
pub(crate) fn decode_cursor(
    cursor: &str,
    names: &[&str],
    pk: &str,
    sk_prefix: &str,
) -> Result<HashMap<String, AttributeValue>, PageError> {
    let bad = || PageError::InvalidCursor;
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let map: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let ok = map.len() == names.len()
        && names.iter().all(|k| map.contains_key(*k))
        && map.get("pk").map(String::as_str) == Some(pk)
        && map.get("sk").is_some_and(|v| v.starts_with(sk_prefix))
        // DynamoDB refuses an empty key attribute (a 500 otherwise, e.g. an edited gsi1sk)
        && map.values().all(|v| !v.is_empty());
    if !ok {
        return Err(bad());
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_what_this_list_did_not_issue() {
        let key: HashMap<String, AttributeValue> = [
            ("pk".to_string(), s("WS#a")),
            ("sk".to_string(), s("AUDIT#0001#x")),
        ]
        .into_iter()
        .collect();
        let c = encode_cursor(&key);
        assert_eq!(
            decode_cursor(&c, &["pk", "sk"], "WS#a", "AUDIT#").unwrap(),
            key
        );
        assert!(decode_cursor(&c, &["pk", "sk"], "WS#b", "AUDIT#").is_err());
        assert!(decode_cursor(&c, &["pk", "sk"], "WS#a", "READING#").is_err());
        assert!(decode_cursor(&c, &["pk", "sk", "gsi1pk"], "WS#a", "AUDIT#").is_err());
        for bad in ["", "!!!", "e30", &"A".repeat(700)] {
            assert!(decode_cursor(bad, &["pk", "sk"], "WS#a", "AUDIT#").is_err());
        }
        let mut edited = key.clone();
        edited.insert("gsi1sk".into(), s(""));
        let names = ["pk", "sk", "gsi1sk"];
        assert!(decode_cursor(&encode_cursor(&edited), &names, "WS#a", "AUDIT#").is_err());
    }
}
