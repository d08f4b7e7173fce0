//! SOAP and gRPC ingress, black-box, on a real 3-node cluster: SOAP register/lookup across
//! nodes and through REST, the WSDL imported by an off-the-shelf client (Python zeep),
//! SOAP faults for every kind of bad envelope, gRPC image upload/list/fetch across nodes
//! and over HTTP, gRPC credential and token checks, health and reflection.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use troupe_proto::auth::token_service_client::TokenServiceClient;
use troupe_proto::auth::user_validation_client::UserValidationClient;
use troupe_proto::auth::{GenerateTokenRequest, ValidateTokenRequest, ValidateUserRequest};
use troupe_proto::images::image_service_client::ImageServiceClient;
use troupe_proto::images::{GetImageRequest, ImageMetadata, ListImagesRequest, UploadImageRequest};

/// Largest image the test cluster accepts.
const MAX_IMAGE: usize = 2 * 1024 * 1024;
const NS: &str = "urn:troupe:users:v1";
/// The test cluster's `[grpc] timeout_ms`.
const GRPC_TIMEOUT_MS: u64 = 3000;

fn cluster(tag: &str) -> Cluster {
    Cluster::start(
        tag,
        Options {
            extra_toml: format!(
                "[images]\nmax_bytes = {MAX_IMAGE}\n[grpc]\ntimeout_ms = {GRPC_TIMEOUT_MS}\n"
            ),
            ..Options::default()
        },
    )
}

#[test]
fn soap_and_grpc_on_three_nodes() {
    let c = cluster("soap-grpc");
    soap_register_on_n1_is_visible_through_rest_and_soap_on_n3(&c);
    off_the_shelf_soap_client_imports_the_wsdl_and_calls_it(&c);
    bad_soap_requests_get_the_right_fault_and_change_nothing(&c);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        image_uploaded_on_n2_is_listed_on_n1_and_served_on_n3(&c).await;
        a_call_sent_again_with_its_idempotency_key_writes_once(&c).await;
        bad_uploads_are_refused_with_the_right_status(&c).await;
        a_stalled_upload_is_cut_off_at_the_grpc_timeout(&c).await;
        credentials_and_tokens_are_checked_over_grpc(&c).await;
        health_and_reflection_answer_on_every_node(&c).await;
    });
}

// ---------------------------------------------------------------------------- SOAP

/// A raw HTTP answer: status, content type, body text.
struct Raw {
    status: u16,
    content_type: String,
    text: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn raw(resp: ureq::http::Response<ureq::Body>) -> Raw {
    let mut resp = resp;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    Raw {
        status,
        content_type,
        text,
    }
}

fn soap_post(node: &Node, path: &str, body: &str, headers: &[(&str, &str)]) -> Raw {
    let mut req = agent().post(node.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    raw(req.send(body.as_bytes()).expect("soap post"))
}

fn http_get(url: &str) -> Raw {
    raw(agent().get(url).call().expect("get"))
}

fn envelope(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:u=\"{NS}\"><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"
    )
}

fn register_envelope(username: &str, email: &str, password: &str) -> String {
    envelope(&format!(
        "<u:RegisterUser><u:username>{username}</u:username><u:email>{email}</u:email>\
         <u:password>{password}</u:password></u:RegisterUser>"
    ))
}

/// The text of the first `<...:name>` element.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = [format!("<tns:{name}>"), format!("<{name}>")]
        .into_iter()
        .find(|o| xml.contains(o.as_str()))?;
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find('<')?;
    Some(xml[start..end].to_string())
}

const XML_HEADERS: [(&str, &str); 2] = [
    ("content-type", "text/xml; charset=utf-8"),
    ("soapaction", "\"urn:troupe:users:v1#RegisterUser\""),
];

fn soap_lookup(node: &Node, username: &str) -> Raw {
    http_get(&node.url(&format!("/user/soap?username={username}")))
}

fn assert_fault(r: &Raw, faultcode: &str, code: &str, what: &str) {
    assert_eq!(r.status, 500, "{what}: {}", r.text);
    assert!(
        r.content_type.starts_with("text/xml"),
        "{what}: {}",
        r.content_type
    );
    assert_eq!(
        element(&r.text, "faultcode").as_deref(),
        Some(faultcode),
        "{what}: {}",
        r.text
    );
    assert_eq!(
        element(&r.text, "code").as_deref(),
        Some(code),
        "{what}: {}",
        r.text
    );
    assert!(element(&r.text, "faultstring").is_some_and(|s| !s.is_empty()));
}

fn soap_register_on_n1_is_visible_through_rest_and_soap_on_n3(c: &Cluster) {
    let username = format!("soapy_{}", unique());
    let email = format!("{username}@example.com");
    let r = soap_post(
        c.node("n1"),
        "/register",
        &register_envelope(&username, &email, "passw0rd-long"),
        &XML_HEADERS,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("text/xml"));
    let id = element(&r.text, "id").expect("id in the response");
    assert_eq!(
        element(&r.text, "username").as_deref(),
        Some(username.as_str())
    );
    // The registrant's own answer carries the email they sent.
    assert_eq!(element(&r.text, "email").as_deref(), Some(email.as_str()));

    // An anonymous lookup answers the public fields only: no email element, and the address
    // nowhere in the envelope.
    let r = soap_lookup(c.node("n3"), &username);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("LookupUserResponse"), "{}", r.text);
    assert_eq!(element(&r.text, "id").as_deref(), Some(id.as_str()));
    assert_eq!(
        element(&r.text, "username").as_deref(),
        Some(username.as_str())
    );
    assert_eq!(element(&r.text, "email"), None, "{}", r.text);
    assert!(
        !r.text.contains(&email) && !r.text.contains("example.com"),
        "{}",
        r.text
    );
    let created = element(&r.text, "created_at").expect("created_at");
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    // Usernames are unique ignoring case, and looked up that way.
    let r = soap_lookup(c.node("n2"), &username.to_uppercase());
    assert_eq!(
        element(&r.text, "id").as_deref(),
        Some(id.as_str()),
        "{}",
        r.text
    );

    // The same account through REST: log in on n3.
    let (status, v) = login(c.node("n3"), &username, "passw0rd-long");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["user"]["id"], id.as_str());

    // And the generic endpoint on n2.
    let r = soap_post(
        c.node("n2"),
        "/soap",
        &envelope(&format!(
            "<u:LookupUser><u:username>{username}</u:username></u:LookupUser>"
        )),
        &[
            ("content-type", "text/xml"),
            ("soapaction", "urn:troupe:users:v1#LookupUser"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(element(&r.text, "id").as_deref(), Some(id.as_str()));
    assert_eq!(element(&r.text, "email"), None, "{}", r.text);
    // The WSDL lets the email be absent, so clients built from it accept the answer.
    let wsdl = http_get(&c.node("n1").url("/soap?wsdl")).text;
    assert!(
        wsdl.contains(r#"<xsd:element name="email" type="xsd:string" minOccurs="0"/>"#),
        "{wsdl}"
    );
}

const ZEEP_SCRIPT: &str = r#"
import json, sys
try:
    import zeep
except ImportError:
    print("NO_ZEEP")
    sys.exit(0)
wsdl, username = sys.argv[1], sys.argv[2]
client = zeep.Client(wsdl)
out = {}
r = client.service.RegisterUser(username=username, email=username + "@example.com", password="passw0rd-long")
out["register_id"] = r["id"]
r = client.service.LookupUser(username=username)
out["lookup_id"] = r["id"]
out["lookup_username"] = r["username"]
out["lookup_email"] = r["email"]
out["lookup_text"] = repr(zeep.helpers.serialize_object(r))
try:
    client.service.RegisterUser(username=username, email="other-" + username + "@example.com", password="passw0rd-long")
    out["duplicate"] = "accepted"
except zeep.exceptions.Fault as f:
    out["duplicate"] = f.code
    out["duplicate_detail"] = zeep.helpers.serialize_object(f.detail) is not None
    codes = [e.text for e in f.detail.iter() if e.tag.endswith("code")]
    out["duplicate_mesh_code"] = codes[0] if codes else None
print(json.dumps(out))
"#;

fn off_the_shelf_soap_client_imports_the_wsdl_and_calls_it(c: &Cluster) {
    let r = http_get(&c.node("n2").url("/soap?wsdl"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("text/xml"));
    let location = format!("location=\"http://{}/soap\"", c.node("n2").addrs.http);
    assert!(r.text.contains(&location), "{}", r.text);

    let script = c.dir.join("zeep_client.py");
    std::fs::write(&script, ZEEP_SCRIPT).expect("write script");
    let username = format!("zeep_{}", unique());
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(c.node("n1").url("/soap?wsdl"))
        .arg(&username)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            println!("skipped: off_the_shelf_soap_client (python3 not runnable: {e})");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "zeep script failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.trim() == "NO_ZEEP" {
        eprintln!("skipped: off_the_shelf_soap_client (zeep not installed)");
        println!("skipped: off_the_shelf_soap_client (zeep not installed)");
        return;
    }
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json from zeep");
    assert!(
        v["register_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert_eq!(v["lookup_id"], v["register_id"], "{v}");
    // The anonymous lookup, read by zeep from the WSDL: the public fields, no email.
    assert_eq!(v["lookup_username"], username.as_str(), "{v}");
    assert_eq!(v["lookup_email"], serde_json::Value::Null, "{v}");
    assert!(
        !v["lookup_text"].as_str().unwrap().contains("example.com"),
        "{v}"
    );
    assert_eq!(v["duplicate"], "soap:Client", "{v}");
    assert_eq!(v["duplicate_mesh_code"], "already_exists", "{v}");
    // Visible over SOAP on another node.
    let r = soap_lookup(c.node("n3"), &username);
    assert_eq!(element(&r.text, "id").as_deref(), v["register_id"].as_str());
}

/// One bad SOAP request: what it is, body, headers, expected faultcode and mesh code.
type BadCase = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    &'static str,
    &'static str,
);

fn bad_soap_requests_get_the_right_fault_and_change_nothing(c: &Cluster) {
    let n1 = c.node("n1");
    let victim = format!("victim_{}", unique());
    let register = |inner: &str| envelope(inner);
    let laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
         <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\
         <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\
         <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:u=\"{NS}\">\
         <soapenv:Body><u:RegisterUser><u:username>{victim}</u:username><u:email>{victim}@example.com</u:email>\
         <u:password>&lol3;</u:password></u:RegisterUser></soapenv:Body></soapenv:Envelope>"
    );
    let cases: Vec<BadCase> = vec![
        (
            "malformed xml",
            format!("<soapenv:Envelope><u:RegisterUser><u:username>{victim}"),
            XML_HEADERS.to_vec(),
            "soap:Client",
            "invalid_argument",
        ),
        (
            "wrong operation namespace",
            envelope(&format!(
                "<o:RegisterUser xmlns:o=\"urn:other:v9\"><o:username>{victim}</o:username>\
                 <o:email>{victim}@example.com</o:email><o:password>passw0rd-long</o:password></o:RegisterUser>"
            )),
            XML_HEADERS.to_vec(),
            "soap:Client",
            "invalid_argument",
        ),
        (
            "soap 1.2 envelope",
            format!(
                "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:u=\"{NS}\"><e:Body>\
                 <u:RegisterUser><u:username>{victim}</u:username></u:RegisterUser></e:Body></e:Envelope>"
            ),
            XML_HEADERS.to_vec(),
            "soap:VersionMismatch",
            "invalid_argument",
        ),
        (
            "billion laughs",
            laughs,
            XML_HEADERS.to_vec(),
            "soap:Client",
            "invalid_argument",
        ),
        (
            "missing body",
            String::new(),
            XML_HEADERS.to_vec(),
            "soap:Client",
            "invalid_argument",
        ),
        (
            "envelope without a soap body",
            "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"/>".into(),
            XML_HEADERS.to_vec(),
            "soap:Client",
            "invalid_argument",
        ),
        (
            "soapaction naming another operation",
            register_envelope(&victim, &format!("{victim}@example.com"), "passw0rd-long"),
            vec![("content-type", "text/xml"), ("soapaction", "urn:troupe:users:v1#LookupUser")],
            "soap:Client",
            "invalid_argument",
        ),
        (
            "json content type",
            register_envelope(&victim, &format!("{victim}@example.com"), "passw0rd-long"),
            vec![("content-type", "application/json")],
            "soap:Client",
            "invalid_argument",
        ),
        (
            "invalid fields",
            register_envelope(&victim, "not-an-email", "short"),
            XML_HEADERS.to_vec(),
            "soap:Client",
            "invalid_argument",
        ),
        (
            "oversized body",
            register(&format!(
                "<u:RegisterUser><u:username>{victim}</u:username><u:email>{victim}@example.com</u:email>\
                 <u:password>passw0rd-long</u:password><u:full_name>{}</u:full_name></u:RegisterUser>",
                "x".repeat(100 * 1024)
            )),
            XML_HEADERS.to_vec(),
            "soap:Client",
            "resource_exhausted",
        ),
    ];
    for (what, body, headers, faultcode, code) in cases {
        let r = soap_post(n1, "/register", &body, &headers);
        assert_fault(&r, faultcode, code, what);
        assert!(
            element(&r.text, "requestId").is_some(),
            "{what}: {}",
            r.text
        );
    }
    // Nothing of that created the user.
    let r = soap_lookup(c.node("n2"), &victim);
    assert_fault(&r, "soap:Client", "not_found", "lookup of the victim");

    // Field errors carry their details.
    let r = soap_post(
        n1,
        "/register",
        &register_envelope(&victim, "nope", "short"),
        &XML_HEADERS,
    );
    assert!(
        element(&r.text, "details").is_some_and(|d| d.contains("email")),
        "{}",
        r.text
    );

    // A duplicate is already_exists.
    let taken = format!("taken_{}", unique());
    let body = register_envelope(&taken, &format!("{taken}@example.com"), "passw0rd-long");
    assert_eq!(soap_post(n1, "/register", &body, &XML_HEADERS).status, 200);
    let again = soap_post(c.node("n3"), "/register", &body, &XML_HEADERS);
    assert_fault(
        &again,
        "soap:Client",
        "already_exists",
        "duplicate register",
    );
    // Its address under another name is answered as a new account (a user id), so the
    // answer does not tell that the address is registered; no account is made.
    let other = format!("other_{}", unique());
    let body = register_envelope(&other, &format!("{taken}@EXAMPLE.com"), "passw0rd-long");
    let hidden = soap_post(c.node("n2"), "/register", &body, &XML_HEADERS);
    assert_eq!(hidden.status, 200, "{}", hidden.text);
    assert!(
        element(&hidden.text, "id").is_some_and(|id| id.len() == 36),
        "{}",
        hidden.text
    );
    assert_fault(
        &soap_lookup(n1, &other),
        "soap:Client",
        "not_found",
        "the hidden registration made no account",
    );

    // Lookups: a missing or malformed username; GET /soap without ?wsdl; a LookupUser at
    // POST /register.
    assert_fault(
        &http_get(&n1.url("/user/soap")),
        "soap:Client",
        "invalid_argument",
        "no username",
    );
    assert_fault(
        &soap_lookup(n1, "bad%20name%3C"),
        "soap:Client",
        "invalid_argument",
        "malformed username",
    );
    assert_fault(
        &http_get(&n1.url("/soap")),
        "soap:Client",
        "invalid_argument",
        "GET /soap",
    );
    let lookup = envelope(&format!(
        "<u:LookupUser><u:username>{taken}</u:username></u:LookupUser>"
    ));
    let r = soap_post(n1, "/register", &lookup, &[("content-type", "text/xml")]);
    assert_fault(
        &r,
        "soap:Client",
        "invalid_argument",
        "LookupUser at /register",
    );
    // An unknown method on a SOAP route is a fault too, not JSON.
    let r = raw(agent().delete(n1.url("/register")).call().expect("delete"));
    assert_fault(&r, "soap:Client", "invalid_argument", "DELETE /register");
}

// ---------------------------------------------------------------------------- gRPC

async fn channel(node: &Node) -> Channel {
    Channel::from_shared(format!("http://{}", node.addrs.grpc))
        .expect("uri")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("grpc connect")
}

fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("metadata");
    req.metadata_mut().insert("authorization", value);
    req
}

fn png(len: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    let mut x: u32 = 7;
    while v.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        v.push((x >> 16) as u8);
    }
    v
}

fn chunks(filename: &str, data: &[u8], chunk: usize, declared: u64) -> Vec<UploadImageRequest> {
    let mut out: Vec<UploadImageRequest> = data
        .chunks(chunk)
        .map(|c| UploadImageRequest {
            metadata: None,
            chunk: c.to_vec().into(),
        })
        .collect();
    if out.is_empty() {
        out.push(UploadImageRequest::default());
    }
    out[0].metadata = Some(ImageMetadata {
        filename: filename.to_string(),
        content_type: "image/png".into(),
        size: declared,
    });
    out
}

/// A unary upload of a one-pixel GIF carrying `key` as its `idempotency-key` metadata.
fn keyed_gif(token: &str, key: &str) -> Request<UploadImageRequest> {
    let gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
    let mut req = authed(
        UploadImageRequest {
            metadata: Some(ImageMetadata {
                filename: "once".into(),
                ..Default::default()
            }),
            chunk: gif.to_vec().into(),
        },
        token,
    );
    req.metadata_mut()
        .insert("idempotency-key", key.parse().expect("metadata"));
    req
}

async fn a_call_sent_again_with_its_idempotency_key_writes_once(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n3"), "keyed");
    let mut n1 = ImageServiceClient::new(channel(c.node("n1")).await);
    let mut n3 = ImageServiceClient::new(channel(c.node("n3")).await);
    let count = |list: troupe_proto::images::ListImagesResponse| list.total;
    let key = format!("upload-{}", unique());
    let first = n1
        .upload_image_unary(keyed_gif(&u.access, &key))
        .await
        .expect("keyed upload")
        .into_inner();
    // Sent again, on another node: the first answer, and no second image.
    let again = n3
        .upload_image_unary(keyed_gif(&u.access, &key))
        .await
        .expect("the same keyed upload again")
        .into_inner();
    // (The URL names the node that answered; the rest is the first answer.)
    assert_eq!(
        (&again.id, &again.filename, again.size, &again.owner),
        (&first.id, &first.filename, first.size, &first.owner)
    );
    let listed = n3
        .list_images(authed(ListImagesRequest::default(), &u.access))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(count(listed), 1);
    // Another key is another write.
    let other = n1
        .upload_image_unary(keyed_gif(&u.access, &format!("upload-{}", unique())))
        .await
        .expect("another key")
        .into_inner();
    assert_ne!(other.id, first.id);
    // A key that is not 1-255 visible ASCII characters: refused, nothing written.
    for bad in ["x".repeat(256), "two words".to_string()] {
        let err = n1
            .upload_image_unary(keyed_gif(&u.access, &bad))
            .await
            .expect_err("a bad key");
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err:?}");
        assert!(
            err.message().contains("Idempotency-Key"),
            "{}",
            err.message()
        );
    }
    let listed = n1
        .list_images(authed(ListImagesRequest::default(), &u.access))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(count(listed), 2);
}

async fn image_uploaded_on_n2_is_listed_on_n1_and_served_on_n3(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n2"), "pics");
    let data = png(1_200_000);
    let mut n2 = ImageServiceClient::new(channel(c.node("n2")).await);
    let stream = tokio_stream::iter(chunks("../holiday photo.png", &data, 64 * 1024, 0));
    let image = n2
        .upload_image(authed(stream, &u.access))
        .await
        .expect("streamed upload")
        .into_inner();
    assert_eq!(image.content_type, "image/png");
    assert_eq!(image.filename, "holiday_photo.png");
    assert_eq!(image.size, data.len() as u64);
    assert_eq!(image.owner, u.id);
    assert!(
        image.url.ends_with(&format!("/images/{}", image.id)),
        "{}",
        image.url
    );

    // A small GIF in one unary message, on n1.
    let gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;".to_vec();
    let mut n1 = ImageServiceClient::new(channel(c.node("n1")).await);
    let small = n1
        .upload_image_unary(authed(
            UploadImageRequest {
                metadata: Some(ImageMetadata {
                    filename: "dot".into(),
                    ..Default::default()
                }),
                chunk: gif.clone().into(),
            },
            &u.access,
        ))
        .await
        .expect("unary upload")
        .into_inner();
    assert_eq!(
        (small.content_type.as_str(), small.filename.as_str()),
        ("image/gif", "dot.gif")
    );

    let list = n1
        .list_images(authed(ListImagesRequest::default(), &u.access))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.total, 2);
    let ids: Vec<&str> = list.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![small.id.as_str(), image.id.as_str()],
        "newest first"
    );
    // The public URL names the node that answered; the rest is the same image.
    assert!(list.items[1]
        .url
        .starts_with(&format!("http://{}/", c.node("n1").addrs.http)));
    let mut listed = list.items[1].clone();
    listed.url.clone_from(&image.url);
    assert_eq!(listed, image);

    // The bytes over HTTP on n3, public (no token).
    let mut resp = agent()
        .get(c.node("n3").url(&format!("/images/{}", image.id)))
        .call()
        .expect("get image");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let body = resp
        .body_mut()
        .with_config()
        .limit(10 * 1024 * 1024)
        .read_to_vec()
        .expect("body");
    assert!(body == data, "served bytes differ");
    // And through gRPC on n3.
    let mut n3 = ImageServiceClient::new(channel(c.node("n3")).await);
    let got = n3
        .get_image(GetImageRequest {
            id: small.id.clone(),
        })
        .await
        .expect("get image")
        .into_inner();
    assert_eq!(got.data.as_ref(), gif.as_slice());
    assert_eq!(
        got.image.as_ref().map(|i| i.id.as_str()),
        Some(small.id.as_str())
    );

    // Another user sees only their own; an admin may list all.
    let other = new_user(c.node("n3"), c.node("n3"), "other");
    let list = n3
        .list_images(authed(ListImagesRequest::default(), &other.access))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.total, 0);
    let e = n3
        .list_images(authed(
            ListImagesRequest {
                all: true,
                ..Default::default()
            },
            &other.access,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let (status, v) = login(c.node("n3"), "admin", ADMIN_PASSWORD);
    assert_eq!(status, 200, "{v}");
    let admin = v["access_token"].as_str().unwrap().to_string();
    let all = n3
        .list_images(authed(
            ListImagesRequest {
                all: true,
                per_page: 100,
                page: 1,
            },
            &admin,
        ))
        .await
        .expect("admin list")
        .into_inner();
    assert!(all.total >= 2 && all.items.iter().any(|i| i.id == image.id));

    // Missing and malformed ids over HTTP.
    let r = http_get(&c.node("n1").url(&format!("/images/{}", uuid_like())));
    assert_eq!(r.status, 404, "{}", r.text);
}

fn uuid_like() -> String {
    format!("00000000-0000-4000-8000-{:0>12}", unique())
}

/// Issue 23: a client that starts an upload and then sends nothing holds no call open
/// past `[grpc] timeout_ms`; nothing is stored, and the node keeps answering.
async fn a_stalled_upload_is_cut_off_at_the_grpc_timeout(c: &Cluster) {
    use tokio_stream::StreamExt as _;
    let u = new_user(c.node("n3"), c.node("n3"), "stall");
    let mut n3 = ImageServiceClient::new(channel(c.node("n3")).await);
    let first = chunks("slow.png", &png(100_000), 10_000, 0).remove(0);
    let stalled = tokio_stream::iter([first]).chain(tokio_stream::pending());
    let started = std::time::Instant::now();
    let e = n3
        .upload_image(authed(stalled, &u.access))
        .await
        .unwrap_err();
    assert!(
        matches!(e.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{e:?}"
    );
    // The server's timeout ended it, not the client channel's 20 s.
    assert!(started.elapsed() < Duration::from_secs(15), "{e:?}");
    let list = n3
        .list_images(authed(ListImagesRequest::default(), &u.access))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.total, 0);
}

async fn bad_uploads_are_refused_with_the_right_status(c: &Cluster) {
    let u = new_user(c.node("n2"), c.node("n2"), "bad");
    let mut n2 = ImageServiceClient::new(channel(c.node("n2")).await);

    let not_image = b"<?php system($_GET['c']); ?>".repeat(100);
    let e = n2
        .upload_image(authed(
            tokio_stream::iter(chunks("x.png", &not_image, 1024, 0)),
            &u.access,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    let big = png(MAX_IMAGE + 1);
    let e = n2
        .upload_image(authed(
            tokio_stream::iter(chunks("big.png", &big, 256 * 1024, 0)),
            &u.access,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    let e = n2
        .upload_image(authed(
            tokio_stream::iter(chunks("big.png", &png(100), 1024, (MAX_IMAGE * 4) as u64)),
            &u.access,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "declared size: {e:?}");

    let e = n2
        .upload_image(tokio_stream::iter(chunks("a.png", &png(100), 1024, 0)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = n2
        .upload_image(authed(
            tokio_stream::iter(chunks("a.png", &png(100), 1024, 0)),
            "garbage",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    let mut no_meta = chunks("a.png", &png(100), 1024, 0);
    no_meta[0].metadata = None;
    let e = n2
        .upload_image(authed(tokio_stream::iter(no_meta), &u.access))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let mut twice = chunks("a.png", &png(5000), 1024, 0);
    twice[2].metadata = twice[0].metadata.clone();
    let e = n2
        .upload_image(authed(tokio_stream::iter(twice), &u.access))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = n2
        .upload_image_unary(authed(
            UploadImageRequest {
                metadata: Some(ImageMetadata::default()),
                chunk: Default::default(),
            },
            &u.access,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = n2
        .get_image(GetImageRequest { id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = n2
        .get_image(GetImageRequest { id: uuid_like() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(
        e.metadata()
            .get("troupe-error-code")
            .and_then(|v| v.to_str().ok()),
        Some("not_found")
    );

    // None of it stored anything.
    let list = n2
        .list_images(authed(ListImagesRequest::default(), &u.access))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.total, 0, "{list:?}");
}

async fn credentials_and_tokens_are_checked_over_grpc(c: &Cluster) {
    let u = new_user(c.node("n1"), c.node("n1"), "tok");
    let ch = channel(c.node("n3")).await;
    let mut users = UserValidationClient::new(ch.clone());
    let mut tokens = TokenServiceClient::new(ch);

    let ok = users
        .validate_user(ValidateUserRequest {
            username: u.username.clone(),
            password: u.password.clone(),
        })
        .await
        .expect("validate")
        .into_inner();
    assert!(ok.valid);
    assert_eq!(ok.user_id, u.id);
    let bad = users
        .validate_user(ValidateUserRequest {
            username: u.username.clone(),
            password: "wrong-password-1".into(),
        })
        .await
        .expect("validate")
        .into_inner();
    assert!(!bad.valid && bad.user_id.is_empty());
    let e = users
        .validate_user(ValidateUserRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let mut req = Request::new(GenerateTokenRequest {
        username: u.username.clone(),
        password: u.password.clone(),
    });
    req.set_timeout(Duration::from_secs(3));
    let pair = tokens
        .generate_token(req)
        .await
        .expect("generate")
        .into_inner();
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.user_id, u.id);
    let e = tokens
        .generate_token(GenerateTokenRequest {
            username: u.username.clone(),
            password: "wrong-password-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // The generated token works over REST on another node, and validates over gRPC.
    let (status, v) = send(
        "GET",
        &c.node("n2").url("/profile"),
        None,
        Some(&pair.access_token),
    );
    assert_eq!(
        (status, v["id"].as_str()),
        (200, Some(u.id.as_str())),
        "{v}"
    );
    let v = tokens
        .validate_token(ValidateTokenRequest {
            token: pair.access_token.clone(),
        })
        .await
        .expect("validate token")
        .into_inner();
    assert!(v.valid, "{v:?}");
    assert_eq!(
        (v.user_id.as_str(), v.session_id.as_str()),
        (u.id.as_str(), pair.session_id.as_str())
    );
    // From the authorization metadata when the request names none.
    let v = tokens
        .validate_token(authed(ValidateTokenRequest::default(), &u.access))
        .await
        .expect("validate bearer")
        .into_inner();
    assert!(v.valid && v.session_id == u.session);
    let v = tokens
        .validate_token(ValidateTokenRequest {
            token: "not.a.token".into(),
        })
        .await
        .expect("validate garbage")
        .into_inner();
    assert!(!v.valid && !v.reason.is_empty(), "{v:?}");
    let e = tokens
        .validate_token(ValidateTokenRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Logging out ends the token cluster-wide; gRPC sees it too.
    let (status, _) = send(
        "POST",
        &c.node("n1").url("/auth/logout"),
        Some(&json!({})),
        Some(&pair.access_token),
    );
    assert_eq!(status, 200);
    let gone = wait_until_async(Duration::from_secs(5), || {
        let mut tokens = tokens.clone();
        let token = pair.access_token.clone();
        async move {
            tokens
                .validate_token(ValidateTokenRequest { token })
                .await
                .is_ok_and(|r| !r.into_inner().valid)
        }
    })
    .await;
    assert!(gone, "revoked token still valid over gRPC");
}

async fn wait_until_async<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn health_and_reflection_answer_on_every_node(c: &Cluster) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    for node in &c.nodes {
        let ch = channel(node).await;
        let mut health = HealthClient::new(ch.clone());
        for service in [
            "",
            "troupe.images.v1.ImageService",
            "troupe.auth.v1.TokenService",
            "troupe.auth.v1.UserValidation",
            "images",
            "users",
            "auth",
        ] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap_or_else(|e| panic!("{} health {service:?}: {e:?}", node.addrs.name))
                .into_inner();
            assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
        }
        let e = health
            .check(HealthCheckRequest {
                service: "no.such.Service".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);

        let mut reflection = ServerReflectionClient::new(ch);
        let requests = tokio_stream::iter(vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileContainingSymbol(
                    "troupe.images.v1.ImageService".into(),
                )),
            },
        ]);
        let mut answers = reflection
            .server_reflection_info(requests)
            .await
            .expect("reflection")
            .into_inner();
        let first = answers.message().await.expect("list").expect("a reply");
        let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
            panic!("not a service list: {first:?}");
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        for want in [
            "troupe.images.v1.ImageService",
            "troupe.auth.v1.UserValidation",
            "troupe.auth.v1.TokenService",
            "grpc.health.v1.Health",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let second = answers.message().await.expect("file").expect("a reply");
        let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
            panic!("not a descriptor: {second:?}");
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
}
