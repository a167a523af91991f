//! Answers from Images servers, read leniently: real servers omit fields (Together has no
//! `created`), send enums OpenAI never documented, numbers as floats or strings (LocalAI), and add
//! fields of their own. Only what easel needs must be there.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Token usage as OpenAI reports it for GPT image models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub input_tokens: Option<u64>,
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub output_tokens: Option<u64>,
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_tokens: Option<u64>,
    #[serde(
        default,
        deserialize_with = "lenient_details",
        skip_serializing_if = "Option::is_none"
    )]
    pub input_tokens_details: Option<InputTokensDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub text_tokens: Option<u64>,
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub image_tokens: Option<u64>,
}

/// A number that may arrive as an integer, a float or a string; anything else is ignored.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A string, or a number written as one; anything else is ignored. A visitor rather than a
/// detour through `Value`: `b64_json` holds megabytes.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Lenient;
    impl<'de> serde::de::Visitor<'de> for Lenient {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(Lenient)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
    }
    d.deserialize_any(Lenient)
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_details<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<InputTokensDetails>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(d)?).ok())
}

fn lenient_usage<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Usage>, D::Error> {
    Ok(match Value::deserialize(d)? {
        v @ Value::Object(_) => serde_json::from_value(v).ok(),
        _ => None,
    })
}

/// One entry of `data`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageData {
    #[serde(default, deserialize_with = "lenient_string")]
    pub b64_json: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub revised_prompt: Option<String>,
}

/// The JSON answer of `POST /images/generations`.
#[derive(Debug, Clone, Deserialize)]
pub struct ImagesResponse {
    #[serde(default, deserialize_with = "lenient_i64")]
    pub created: Option<i64>,
    pub data: Vec<ImageData>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub background: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub output_format: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub size: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub quality: Option<String>,
    #[serde(default, deserialize_with = "lenient_usage")]
    pub usage: Option<Usage>,
    /// Set when a server sends an error object with a success status.
    #[serde(default)]
    pub error: Option<Value>,
}

/// Parse a plain answer; the error says, in words, why it is not one.
pub fn parse_images_response(body: &[u8]) -> Result<ImagesResponse, String> {
    // The usual case in one pass; anything else is looked at again to say what is wrong.
    if let Ok(parsed) = serde_json::from_slice::<ImagesResponse>(body)
        && parsed.error.as_ref().is_none_or(Value::is_null)
        && !parsed.data.is_empty()
    {
        return Ok(parsed);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the answer was empty".into());
    }
    // JSON is UTF-8: say so when that is what is wrong (bytes cut off at the very end are left
    // to the cut-off check below).
    if let Err(e) = std::str::from_utf8(body)
        && e.error_len().is_some()
    {
        return Err(format!(
            "the answer is not valid UTF-8 (at byte {}; {})",
            e.valid_up_to(),
            describe_bytes(body)
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        if e.is_eof() {
            format!(
                "the answer is JSON cut off in the middle ({} bytes)",
                body.len()
            )
        } else {
            format!("the answer is not JSON ({}): {e}", describe_bytes(body))
        }
    })?;
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return Err("the answer is an error object with a success status".into());
    }
    let parsed: ImagesResponse = serde_json::from_value(value)
        .map_err(|e| format!("the answer is JSON but not an images response: {e}"))?;
    if parsed.data.is_empty() {
        return Err("the answer holds no images (\"data\" is empty)".into());
    }
    Ok(parsed)
}

/// One server-sent event of a streamed generation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "type", default, deserialize_with = "lenient_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub b64_json: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub partial_image_index: Option<u64>,
    #[serde(default, deserialize_with = "lenient_usage")]
    pub usage: Option<Usage>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub revised_prompt: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub size: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub quality: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub background: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub output_format: Option<String>,
    #[serde(default)]
    pub error: Option<Value>,
}

/// What one event means to the client.
#[derive(Debug, Clone)]
pub enum StreamItem {
    Partial {
        index: u32,
        b64: String,
    },
    Completed(Box<StreamEvent>),
    /// The error object, as JSON.
    Error(Value),
    /// An event easel does not need (a future type, a keep-alive).
    Ignored,
    Done,
}

/// Interpret one `data:` payload.
pub fn parse_stream_data(data: &str) -> Result<StreamItem, String> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(StreamItem::Done);
    }
    if data.is_empty() {
        return Ok(StreamItem::Ignored);
    }
    let event: StreamEvent =
        serde_json::from_str(data).map_err(|e| format!("a stream event is not JSON: {e}"))?;
    if let Some(err) = event.error.clone().filter(|e| !e.is_null()) {
        return Ok(StreamItem::Error(err));
    }
    let kind = event.kind.clone().unwrap_or_default();
    if kind.ends_with(".partial_image") {
        let index = event
            .partial_image_index
            .unwrap_or(0)
            .min(u64::from(u32::MAX)) as u32;
        // Moved, not copied: a partial image is megabytes of base64.
        let b64 = event
            .b64_json
            .ok_or("a partial image event has no b64_json")?;
        return Ok(StreamItem::Partial { index, b64 });
    }
    if kind.ends_with(".completed") {
        if event.b64_json.is_none() {
            return Err("the completed event has no b64_json".into());
        }
        return Ok(StreamItem::Completed(Box::new(event)));
    }
    if kind == "error" {
        return Ok(StreamItem::Error(
            serde_json::to_value(&event.error).unwrap_or(Value::Null),
        ));
    }
    Ok(StreamItem::Ignored)
}

/// A short description of bytes that were not what was expected, for error messages.
pub fn describe_bytes(bytes: &[u8]) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    let what = if head.starts_with("<svg") || (head.starts_with("<?xml") && head.contains("<svg")) {
        "an SVG document"
    } else if head.starts_with("<!doctype html") || head.starts_with("<html") {
        "an HTML page"
    } else if head.starts_with("<?xml") {
        "an XML document"
    } else if head.starts_with('{') || head.starts_with('[') {
        "JSON"
    } else if bytes.is_empty() {
        return "nothing (0 bytes)".into();
    } else if std::str::from_utf8(&bytes[..bytes.len().min(256)]).is_ok() {
        "text"
    } else {
        "binary data of an unknown kind"
    };
    format!("{what}, {} bytes", bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_answers_parse() {
        // OpenAI, gpt-image-2.
        let openai = r#"{"created":1713833628,"data":[{"b64_json":"iVBORw0KGgo="}],"background":"opaque","output_format":"png","size":"1024x1024","quality":"high","usage":{"total_tokens":100,"input_tokens":50,"output_tokens":50,"input_tokens_details":{"text_tokens":10,"image_tokens":40}}}"#;
        let r = parse_images_response(openai.as_bytes()).unwrap();
        assert_eq!(r.created, Some(1713833628));
        assert_eq!(
            r.usage.unwrap().input_tokens_details.unwrap().image_tokens,
            Some(40)
        );
        // DALL·E 3 with a URL and a revised prompt.
        let dalle = r#"{"created":1700000000,"data":[{"url":"https://files.example/img.png","revised_prompt":"A serene lighthouse"}]}"#;
        let r = parse_images_response(dalle.as_bytes()).unwrap();
        assert_eq!(
            r.data[0].revised_prompt.as_deref(),
            Some("A serene lighthouse")
        );
        // Together: no created, extra fields.
        let together = r#"{"id":"abc","model":"flux","object":"list","data":[{"index":0,"b64_json":"aGk=","type":"image"}]}"#;
        assert!(
            parse_images_response(together.as_bytes())
                .unwrap()
                .created
                .is_none()
        );
        // LocalAI: created as float, usage of a different shape, quality enum OpenAI never sent.
        let localai = r#"{"created":1.7e9,"id":"x","data":[{"embedding":null,"index":0,"url":"http://localhost:8080/generated-images/b64.png"}],"usage":{"prompt_tokens":0,"total_tokens":"12"},"quality":"ultra"}"#;
        let r = parse_images_response(localai.as_bytes()).unwrap();
        assert_eq!(r.created, Some(1_700_000_000));
        assert_eq!(r.usage.unwrap().total_tokens, Some(12));
        assert_eq!(r.quality.as_deref(), Some("ultra"));
        // A future gpt-image-2.6 quality and usage details.
        let future = r#"{"created":1,"data":[{"b64_json":"aGk="}],"quality":"xhigh","usage":{"input_tokens":5,"output_tokens":9,"total_tokens":14,"input_tokens_details":{"text_tokens":5,"image_tokens":0},"output_tokens_details":{"image_tokens":9,"text_tokens":0}}}"#;
        assert!(parse_images_response(future.as_bytes()).is_ok());
    }

    #[test]
    fn bad_answers_say_what_arrived() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("{\"created\":1,\"data\":[{\"b64_j", "cut off"),
            ("<html><body>502</body></html>", "HTML page"),
            ("{\"data\":\"oops\"}", "not an images response"),
            ("{\"images\":[]}", "not an images response"),
            ("{\"created\":1,\"data\":[]}", "no images"),
            ("{\"error\":{\"message\":\"x\"}}", "error object"),
        ];
        for (body, needle) in cases {
            let e = parse_images_response(body.as_bytes()).unwrap_err();
            assert!(e.contains(needle), "{body:?}: {e}");
        }
    }

    #[test]
    fn bad_utf8_is_not_called_not_json() {
        let mut body = br#"{"created":1,"data":[{"b64_json":"aGk=","revised_prompt":"caf"#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(br#""}]}"#);
        let e = parse_images_response(&body).unwrap_err();
        assert!(e.contains("not valid UTF-8"), "{e}");
        assert!(!e.contains("not JSON"), "{e}");
    }

    #[test]
    fn stream_events() {
        let partial = r#"{"type":"image_generation.partial_image","b64_json":"aGk=","created_at":1,"size":"1024x1024","quality":"high","background":"opaque","output_format":"png","partial_image_index":2}"#;
        assert!(matches!(
            parse_stream_data(partial).unwrap(),
            StreamItem::Partial { index: 2, .. }
        ));
        let done = r#"{"type":"image_generation.completed","b64_json":"aGk=","created_at":1,"size":"1024x1024","quality":"high","background":"opaque","output_format":"png","usage":{"total_tokens":3,"input_tokens":1,"output_tokens":2,"input_tokens_details":{"text_tokens":1,"image_tokens":0}}}"#;
        let StreamItem::Completed(ev) = parse_stream_data(done).unwrap() else {
            panic!("not completed")
        };
        assert_eq!(ev.usage.unwrap().output_tokens, Some(2));
        assert!(matches!(
            parse_stream_data(r#"{"type":"image_edit.partial_image","b64_json":"aGk="}"#).unwrap(),
            StreamItem::Partial { index: 0, .. }
        ));
        assert!(matches!(
            parse_stream_data(r#"{"error":{"message":"bad","code":"server_error"}}"#).unwrap(),
            StreamItem::Error(_)
        ));
        assert!(matches!(
            parse_stream_data("[DONE]").unwrap(),
            StreamItem::Done
        ));
        assert!(matches!(
            parse_stream_data(r#"{"type":"keepalive"}"#).unwrap(),
            StreamItem::Ignored
        ));
        assert!(parse_stream_data("not json").is_err());
        assert!(parse_stream_data(r#"{"type":"image_generation.completed"}"#).is_err());
    }

    #[test]
    fn describes_bytes() {
        assert!(describe_bytes(b"<svg xmlns='x'/>").starts_with("an SVG document"));
        assert!(describe_bytes(b"<?xml version='1.0'?><svg/>").starts_with("an SVG"));
        assert!(describe_bytes(b"<!DOCTYPE html><html>").starts_with("an HTML page"));
        assert!(describe_bytes(&[0xff, 0x00, 0xfe, 0x80]).starts_with("binary"));
        assert_eq!(describe_bytes(b"hello"), "text, 5 bytes");
    }
}
