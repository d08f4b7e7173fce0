//! Parsing a SOAP 1.1 request envelope with xml-rs, defensively.
//!
//! - DTDs are refused outright (so no entity declarations, no XXE, no billion laughs); only
//!   the five predefined entities and character references are understood.
//! - The body size, element depth, element count and text length are capped ([`Limits`]).
//! - Any input yields a [`Request`] or a [`Fault`], never a panic (see the property test
//!   in [`tests`]).
//!
//! The shape accepted: `soap:Envelope` (SOAP 1.1 namespace; SOAP 1.2 is a `VersionMismatch`
//! fault) with an optional `soap:Header` (a header entry with `soap:mustUnderstand="1"`
//! is a `MustUnderstand` fault) and one `soap:Body` holding exactly one operation element
//! of namespace [`NS`] whose children are text-only fields, in [`NS`] or unqualified.
//! Unknown fields are ignored, as JSON bodies' unknown fields are.

use xml::reader::{ParserConfig, XmlEvent};

use super::fault::{Fault, FaultCode};
use super::{ENV_NS, ENV_NS_12, NS};

/// Caps on what a request may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest body, in bytes.
    pub max_body_bytes: usize,
    /// Deepest element nesting (the envelope is depth 1).
    pub max_depth: usize,
    /// Most elements in one request.
    pub max_elements: usize,
    /// Longest text of one field, in bytes.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_depth: 16,
            max_elements: 256,
            max_text_bytes: 4096,
        }
    }
}

/// An operation of the users endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `RegisterUser`: a new account.
    RegisterUser {
        /// Username.
        username: String,
        /// Email address.
        email: String,
        /// Password.
        password: String,
        /// Optional display name.
        full_name: String,
    },
    /// `LookupUser`: one user by username.
    LookupUser {
        /// Username.
        username: String,
    },
}

impl Operation {
    /// The operation's element name.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::RegisterUser { .. } => "RegisterUser",
            Operation::LookupUser { .. } => "LookupUser",
        }
    }
}

/// A parsed request: its one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub operation: Operation,
}

fn client(message: impl Into<String>) -> Fault {
    Fault::client(message)
}

/// Where the parser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Before the root element.
    Start,
    /// Inside `Envelope`, between its children.
    Envelope,
    /// Inside `Header` (entries and their content are skipped).
    Header,
    /// Inside `Body`, before or after the operation.
    Body,
    /// Inside the operation element.
    Operation,
    /// Inside one field of the operation.
    Field,
    /// After the envelope closed.
    End,
}

/// Parses a request envelope.
pub fn parse(body: &[u8], limits: &Limits) -> Result<Request, Fault> {
    if body.len() > limits.max_body_bytes {
        return Err(Fault::new(
            FaultCode::Client,
            troupe_actors::mesh::MeshError::new(
                troupe_actors::mesh::Code::ResourceExhausted,
                format!(
                    "soap request too large: the limit is {} bytes",
                    limits.max_body_bytes
                ),
            ),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(client("missing soap envelope: the request body is empty"));
    }
    let mut reader = ParserConfig::new()
        .trim_whitespace(false)
        .whitespace_to_characters(true)
        .cdata_to_characters(true)
        .coalesce_characters(true)
        .ignore_comments(true)
        // Belt and braces: a DTD is refused before any content is read (below), so no
        // declared entity is ever expanded; these bound the parser's own work anyway.
        .max_entity_expansion_depth(1)
        .max_entity_expansion_length(256)
        .max_data_length(limits.max_body_bytes)
        .max_attributes(32)
        .create_reader(body);

    let mut place = Place::Start;
    let mut depth = 0usize;
    let mut elements = 0usize;
    let mut seen_header = false;
    let mut seen_body = false;
    let mut operation: Option<String> = None;
    let mut fields: Vec<(String, String)> = Vec::new();

    loop {
        let event = reader.next();
        // xml-rs reports a DOCTYPE once it has read it, at the latest with the root
        // element's start: before any content, so before any entity could be expanded.
        if reader.doctype().is_some() {
            return Err(client(
                "xml with a DTD is not accepted (no DOCTYPE, no entity declarations)",
            ));
        }
        let event = event.map_err(|e| client(format!("malformed xml: {e}")))?;
        match event {
            XmlEvent::StartElement {
                name, attributes, ..
            } => {
                depth += 1;
                elements += 1;
                if depth > limits.max_depth {
                    return Err(client(format!(
                        "xml nested too deep: the limit is {} levels",
                        limits.max_depth
                    )));
                }
                if elements > limits.max_elements {
                    return Err(client(format!(
                        "too many xml elements: the limit is {}",
                        limits.max_elements
                    )));
                }
                let ns = name.namespace.as_deref().unwrap_or_default();
                let local = name.local_name.as_str();
                place = match place {
                    Place::Start => {
                        if local == "Envelope" && ns == ENV_NS {
                            Place::Envelope
                        } else if local == "Envelope" && ns == ENV_NS_12 {
                            return Err(Fault::new(
                                FaultCode::VersionMismatch,
                                troupe_actors::mesh::MeshError::invalid(
                                    "only SOAP 1.1 envelopes are accepted",
                                ),
                            ));
                        } else if local == "Envelope" {
                            return Err(Fault::new(
                                FaultCode::VersionMismatch,
                                troupe_actors::mesh::MeshError::invalid(format!(
                                    "the envelope must be in namespace {ENV_NS}"
                                )),
                            ));
                        } else {
                            return Err(client(format!(
                                "the root element must be soap:Envelope, got {local}"
                            )));
                        }
                    }
                    Place::Envelope => match (ns == ENV_NS, local) {
                        (true, "Header") if !seen_header && !seen_body => {
                            seen_header = true;
                            Place::Header
                        }
                        (true, "Body") if !seen_body => {
                            seen_body = true;
                            Place::Body
                        }
                        _ => {
                            return Err(client(format!(
                                "unexpected element {local} in soap:Envelope \
                                 (expected one optional soap:Header, then one soap:Body)"
                            )))
                        }
                    },
                    Place::Header => {
                        if depth == 3 {
                            let must = attributes.iter().any(|a| {
                                a.name.local_name == "mustUnderstand"
                                    && a.name.namespace.as_deref() == Some(ENV_NS)
                                    && matches!(a.value.trim(), "1" | "true")
                            });
                            if must {
                                return Err(Fault::new(
                                    FaultCode::MustUnderstand,
                                    troupe_actors::mesh::MeshError::invalid(format!(
                                        "header {local} must be understood, and is not"
                                    )),
                                ));
                            }
                        }
                        Place::Header
                    }
                    Place::Body => {
                        if operation.is_some() {
                            return Err(client("soap:Body must hold exactly one operation"));
                        }
                        if ns != NS {
                            return Err(client(format!(
                                "unknown operation {local} in namespace {ns:?}: \
                                 operations are in namespace {NS}"
                            )));
                        }
                        if !matches!(local, "RegisterUser" | "LookupUser") {
                            return Err(client(format!(
                                "unknown operation {local}: expected RegisterUser or LookupUser"
                            )));
                        }
                        operation = Some(local.to_string());
                        Place::Operation
                    }
                    Place::Operation => {
                        if !ns.is_empty() && ns != NS {
                            return Err(client(format!(
                                "field {local} is in namespace {ns:?}: fields are in \
                                 namespace {NS} or unqualified"
                            )));
                        }
                        if fields.iter().any(|(n, _)| n == local) {
                            return Err(client(format!("field {local} is given twice")));
                        }
                        fields.push((local.to_string(), String::new()));
                        Place::Field
                    }
                    Place::Field => {
                        let field = fields.last().map(|(n, _)| n.as_str()).unwrap_or_default();
                        return Err(client(format!(
                            "field {field} must hold text, not an element ({local})"
                        )));
                    }
                    Place::End => return Err(client("content after the envelope")),
                };
            }
            XmlEvent::EndElement { .. } => {
                depth = depth.saturating_sub(1);
                place = match place {
                    Place::Field => Place::Operation,
                    Place::Operation => Place::Body,
                    Place::Header if depth >= 2 => Place::Header,
                    Place::Header | Place::Body => Place::Envelope,
                    Place::Envelope => Place::End,
                    p => p,
                };
            }
            XmlEvent::Characters(text) => match place {
                Place::Field => {
                    let (name, value) = fields.last_mut().expect("in a field");
                    if value.len() + text.len() > limits.max_text_bytes {
                        return Err(client(format!(
                            "field {name} too long: the limit is {} bytes",
                            limits.max_text_bytes
                        )));
                    }
                    value.push_str(&text);
                }
                Place::Header => {}
                _ if text.trim().is_empty() => {}
                _ => return Err(client("unexpected text outside the operation's fields")),
            },
            XmlEvent::EndDocument => break,
            _ => {}
        }
    }
    if !seen_body {
        return Err(client("missing soap:Body"));
    }
    let Some(operation) = operation else {
        return Err(client("soap:Body holds no operation"));
    };
    let mut take = |name: &str| {
        fields
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, v)| std::mem::take(v))
            .unwrap_or_default()
    };
    let operation = match operation.as_str() {
        "RegisterUser" => Operation::RegisterUser {
            username: take("username"),
            email: take("email"),
            password: take("password"),
            full_name: take("full_name"),
        },
        _ => Operation::LookupUser {
            username: take("username"),
        },
    };
    Ok(Request { operation })
}

#[cfg(test)]
mod tests;
