//! RFC 3161 token verification against tokens written by others: Sigstore's TSA (the
//! fixtures in `tests/data/rfc3161`, over the data `hello`, ECDSA P-384) and the test TSA
//! (`openssl ts -reply`, RSA under an EC P-256 CA).

use crate::servers::Tsa;
use crate::suite;
use aitrail_anchor::rfc3161::{token_from_response, verify_token, Trust};
use aitrail_anchor::tsa::TsaAnchor;
use aitrail_anchor::{Anchor, TokenError};
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::{Decode, Encode};
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/rfc3161")
        .join(name)
}

/// The token inside a fixture response.
fn fixture_token(name: &str) -> Vec<u8> {
    let resp = std::fs::read(data(name)).unwrap();
    token_from_response(&resp).unwrap().unwrap()
}

/// `ts_chain.pem` holds the TSA certificate, then the root.
fn chain_pem() -> String {
    std::fs::read_to_string(data("ts_chain.pem")).unwrap()
}

fn root_only() -> Trust {
    let pem = chain_pem();
    let second = pem
        .match_indices("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .unwrap()
        .0;
    Trust::from_pem(&pem.as_bytes()[second..]).unwrap()
}

#[test]
fn sigstore_tokens_verify_to_the_root() {
    let trust = root_only();
    assert_eq!(
        trust.subjects(),
        ["CN=sigstore-tsa-selfsigned,O=sigstore.dev"]
    );
    for name in [
        "response-sha256.tsr",
        "response-sha384.tsr",
        "response-sha512.tsr",
    ] {
        let v = verify_token(&fixture_token(name), b"hello", &trust)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.timestamp.tsa, "CN=sigstore-tsa,O=sigstore.dev", "{name}");
        assert_eq!(v.timestamp.policy, "1.3.6.1.4.1.57264.2");
        assert!(
            v.timestamp.gen_time.starts_with("2025-05-09T11:58:5"),
            "{v:?}"
        );
        assert_eq!(
            v.chain,
            [
                "CN=sigstore-tsa,O=sigstore.dev",
                "CN=sigstore-tsa-selfsigned,O=sigstore.dev"
            ]
        );
    }
    let v = verify_token(&fixture_token("response-sha256.tsr"), b"hello", &trust).unwrap();
    assert_eq!(
        v.timestamp.serial,
        "784b4c5e57aaa63b570f15cba4df95251668ae9e"
    );
    assert_eq!(v.timestamp.gen_time, "2025-05-09T11:58:55Z");
}

#[test]
fn sigstore_token_with_an_invalid_signature_fails() {
    let err = verify_token(
        &fixture_token("response-invalid-signature.tsr"),
        b"hello",
        &root_only(),
    )
    .unwrap_err();
    assert!(matches!(err, TokenError::Signature(_)), "{err}");
}

#[test]
fn sigstore_token_over_other_data_fails_on_the_imprint() {
    let err = verify_token(
        &fixture_token("response-sha256.tsr"),
        b"hellO",
        &root_only(),
    )
    .unwrap_err();
    assert!(matches!(err, TokenError::Imprint { .. }), "{err}");
    assert!(err.to_string().contains("2cf24dba"), "{err}");
}

#[test]
fn token_without_embedded_certificate_needs_it_in_the_ca_file() {
    let token = fixture_token("response-no-embedded-cert.tsr");
    // Root only: the signer's certificate is nowhere.
    let err = verify_token(&token, b"hello", &root_only()).unwrap_err();
    assert!(matches!(err, TokenError::Chain(_)), "{err}");
    // The whole chain file: found there, and chained.
    let full = Trust::from_pem(chain_pem().as_bytes()).unwrap();
    verify_token(&token, b"hello", &full).unwrap();
}

#[test]
fn token_under_another_ca_fails_on_the_chain() {
    let Some(server) = Tsa::get() else { return };
    let trust = Trust::from_pem(&std::fs::read(server.ca()).unwrap()).unwrap();
    let err = verify_token(&fixture_token("response-sha256.tsr"), b"hello", &trust).unwrap_err();
    assert!(matches!(err, TokenError::Chain(_)), "{err}");
}

#[test]
fn a_malformed_token_is_named_as_such() {
    let trust = root_only();
    let mut token = fixture_token("response-sha256.tsr");
    token.truncate(token.len() / 2);
    let err = verify_token(&token, b"hello", &trust).unwrap_err();
    assert!(matches!(err, TokenError::Malformed(_)), "{err}");
    let err = token_from_response(b"not der").unwrap_err();
    assert!(matches!(err, TokenError::Malformed(_)), "{err}");
}

/// A token signed with a certificate of the same CA that lacks the timeStamping usage:
/// `openssl ts -reply` refuses such a signer, so the TSTInfo of a real token is re-signed
/// with `openssl cms -sign -cades` (which adds the ESS signing-certificate-v2 attribute).
#[test]
fn token_signed_without_the_timestamping_usage_fails() {
    let Some(server) = Tsa::get() else { return };
    let tokens = tempfile::tempdir().unwrap();
    let anchor = TsaAnchor::new(&server.url(), &server.ca(), tokens.path()).unwrap();
    let note = suite::note(&suite::signer(1), 77);
    let receipt = anchor.put("default", &note).unwrap();
    let token = std::fs::read(&receipt.location).unwrap();
    let trust = Trust::from_pem(&std::fs::read(server.ca()).unwrap()).unwrap();
    verify_token(&token, note.as_bytes(), &trust).unwrap();

    let sd: SignedData = ContentInfo::from_der(&token)
        .unwrap()
        .content
        .decode_as()
        .unwrap();
    let econtent = sd.encap_content_info.econtent.unwrap().to_der().unwrap();
    let tst = der::asn1::OctetString::from_der(&econtent).unwrap();
    let work = tempfile::tempdir().unwrap();
    let tst_path = work.path().join("tst.der");
    std::fs::write(&tst_path, tst.as_bytes()).unwrap();
    let out = work.path().join("token.der");
    let status = std::process::Command::new("openssl")
        .args([
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-cades",
            "-md",
            "sha256",
        ])
        .args([
            "-econtent_type",
            "1.2.840.113549.1.9.16.1.4",
            "-outform",
            "DER",
        ])
        .arg("-signer")
        .arg(server.dir.join("noeku.crt"))
        .arg("-inkey")
        .arg(server.dir.join("noeku.key"))
        .arg("-certfile")
        .arg(server.ca())
        .arg("-in")
        .arg(&tst_path)
        .arg("-out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let err = verify_token(&std::fs::read(&out).unwrap(), note.as_bytes(), &trust).unwrap_err();
    assert!(matches!(err, TokenError::KeyUsage(_)), "{err}");
    assert!(err.to_string().contains("RFC 3161 §2.3"), "{err}");
}
