//! RFC 3161 timestamps: the request (§2.4.1), the response (§2.4.2), and the verification of a
//! token against the data it stamps and a configured CA.
//!
//! A token is verified when all of these hold:
//! 1. it is a CMS SignedData (RFC 5652 §5) over a TSTInfo (RFC 3161 §2.4.2), signed by exactly
//!    one signer, the TSA;
//! 2. its messageImprint is the hash of the data (§2.4.2);
//! 3. the signed attributes hold the content type and the message digest of the TSTInfo
//!    (RFC 5652 §5.3, §11.1-2), and the signature over them verifies with the signer
//!    certificate's key (RFC 5652 §5.4-6);
//! 4. an ESS signing-certificate attribute (v1 or v2) names that certificate (RFC 3161
//!    §2.4.1, RFC 5816 §2.2.1), so another certificate with the same key cannot be swapped in;
//! 5. the certificate chains to the configured CA, valid at the token's genTime;
//! 6. the certificate's only extended key usage is id-kp-timeStamping, critical (§2.3).

use crate::error::TokenError;
use crate::pkix::{self, Cert, Digest};
use crate::Timestamp;
use cmpv2::status::PkiStatus;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{Int, OctetString};
use der::{Any, Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier};
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

/// id-ct-TSTInfo (RFC 3161 §2.4.2).
pub const ID_CT_TST_INFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// The CAs a token's signer must chain to (the `--tsa-ca` file).
#[derive(Clone, Debug)]
pub struct Trust {
    certs: Vec<Cert>,
}

impl Trust {
    /// Reads the certificates of a PEM file. Every certificate in it is trusted.
    pub fn from_pem(pem: &[u8]) -> Result<Trust, TokenError> {
        let certs = pkix::certs_from_pem(pem).map_err(TokenError::Malformed)?;
        Ok(Trust { certs })
    }

    /// The subjects of the trusted certificates.
    pub fn subjects(&self) -> Vec<String> {
        self.certs.iter().map(Cert::subject).collect()
    }
}

/// A timestamp request ready to send.
#[derive(Clone, Debug)]
pub struct Request {
    /// DER of the TimeStampReq.
    pub der: Vec<u8>,
    /// The nonce in it (RFC 3161 §2.4.1), to compare with the reply's.
    pub nonce: Vec<u8>,
}

/// Builds a request for a SHA-256 imprint of `data`, with a random 64-bit nonce, asking for
/// the TSA's certificate in the reply (certReq, RFC 3161 §2.4.1).
pub fn request(data: &[u8]) -> Result<Request, TokenError> {
    let mut nonce = [0u8; 8];
    getrandom::getrandom(&mut nonce)
        .map_err(|e| TokenError::Malformed(format!("no random bytes for the nonce: {e}")))?;
    nonce[0] &= 0x7f; // a positive INTEGER
    nonce[0] |= 0x01; // no leading zero byte to strip
    let bad = |e: der::Error| TokenError::Malformed(format!("encoding the request: {e}"));
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: rfc5912::ID_SHA_256,
                parameters: None,
            },
            hashed_message: OctetString::new(Digest::Sha256.hash(data)).map_err(bad)?,
        },
        req_policy: None,
        nonce: Some(Int::new(&nonce).map_err(bad)?),
        cert_req: true,
        extensions: None,
    };
    Ok(Request {
        der: req.to_der().map_err(bad)?,
        nonce: nonce.to_vec(),
    })
}

/// Why a TSA did not grant a timestamp: its PKIStatus and any text it sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: String,
    pub text: String,
}

/// Reads a TimeStampResp (RFC 3161 §2.4.2) and returns the token when the status is granted
/// or grantedWithMods.
pub fn token_from_response(der: &[u8]) -> Result<Result<Vec<u8>, Refusal>, TokenError> {
    let resp = TimeStampResp::from_der(der)
        .map_err(|e| TokenError::Malformed(format!("not a TimeStampResp: {e}")))?;
    match resp.status.status {
        PkiStatus::Accepted | PkiStatus::GrantedWithMods => {}
        other => {
            let text = resp
                .status
                .status_string
                .iter()
                .flatten()
                .map(|s| s.as_str().to_owned())
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(Err(Refusal {
                status: format!("{other:?}"),
                text,
            }));
        }
    }
    let token = resp.time_stamp_token.ok_or_else(|| {
        TokenError::Malformed("the response is granted but holds no token".into())
    })?;
    Ok(Ok(token.to_der().map_err(|e| {
        TokenError::Malformed(format!("re-encoding the token: {e}"))
    })?))
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub timestamp: Timestamp,
    /// The nonce of the TSTInfo, when present (big-endian bytes).
    pub nonce: Option<Vec<u8>>,
    /// The subjects from the TSA certificate up to the trusted CA.
    pub chain: Vec<String>,
}

/// Verifies `token` (a TimeStampToken, DER) as a timestamp of `data` by a TSA under `trust`.
pub fn verify_token(token: &[u8], data: &[u8], trust: &Trust) -> Result<Verified, TokenError> {
    let malformed = |what: &str, e: der::Error| TokenError::Malformed(format!("{what}: {e}"));
    // 1. ContentInfo / SignedData / TSTInfo (RFC 3161 §2.4.2, RFC 5652 §3, §5.1-2).
    let ci = ContentInfo::from_der(token).map_err(|e| malformed("not a ContentInfo", e))?;
    if ci.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(TokenError::Malformed(format!(
            "content type {} is not id-signedData",
            ci.content_type
        )));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| malformed("not a SignedData", e))?;
    if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(TokenError::Malformed(format!(
            "encapsulated content type {} is not id-ct-TSTInfo",
            sd.encap_content_info.econtent_type
        )));
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| TokenError::Malformed("the TSTInfo is missing".into()))?;
    let tst_bytes =
        OctetString::from_der(&econtent.to_der().map_err(|e| malformed("eContent", e))?)
            .map_err(|e| malformed("eContent is not an OCTET STRING", e))?;
    let tst_bytes = tst_bytes.as_bytes();
    let tst = TstInfo::from_der(tst_bytes).map_err(|e| malformed("not a TSTInfo", e))?;

    // 2. The imprint (§2.4.2: the hash of the data, by the algorithm it names).
    let imprint_alg = Digest::from_oid(&tst.message_imprint.hash_algorithm.oid)
        .map_err(|e| TokenError::Unsupported(format!("message imprint {e}")))?;
    let expected = imprint_alg.hash(data);
    if tst.message_imprint.hashed_message.as_bytes() != expected.as_slice() {
        return Err(TokenError::Imprint {
            token: hex::encode(tst.message_imprint.hashed_message.as_bytes()),
            data: hex::encode(&expected),
        });
    }

    // 3. One signer; its signed attributes and signature (RFC 5652 §5.3-6).
    let signers: Vec<_> = sd.signer_infos.0.iter().collect();
    let [si] = signers.as_slice() else {
        return Err(TokenError::Malformed(format!(
            "{} signers; a timestamp token has only the TSA's signature (RFC 3161 §2.4.2)",
            signers.len()
        )));
    };
    let digest = Digest::from_oid(&si.digest_alg.oid)
        .map_err(|e| TokenError::Unsupported(format!("signer digest {e}")))?;
    let attrs = si.signed_attrs.as_ref().ok_or_else(|| {
        TokenError::Signature(
            "no signed attributes (RFC 5652 §5.3: required for content other than id-data)".into(),
        )
    })?;
    let attr = |oid: ObjectIdentifier| -> Result<Option<Any>, TokenError> {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        match (found.next(), found.next()) {
            (None, _) => Ok(None),
            (Some(a), None) if a.values.len() == 1 => Ok(a.values.get(0).cloned()),
            _ => Err(TokenError::Signature(format!(
                "signed attribute {oid} must appear once with one value (RFC 5652 §11)"
            ))),
        }
    };
    let content_type: ObjectIdentifier = attr(rfc5911::ID_CONTENT_TYPE)?
        .ok_or_else(|| TokenError::Signature("no content-type signed attribute".into()))?
        .decode_as()
        .map_err(|e| malformed("content-type attribute", e))?;
    if content_type != ID_CT_TST_INFO {
        return Err(TokenError::Signature(format!(
            "the signed content-type attribute is {content_type}, not id-ct-TSTInfo"
        )));
    }
    let message_digest: OctetString = attr(rfc5911::ID_MESSAGE_DIGEST)?
        .ok_or_else(|| TokenError::Signature("no message-digest signed attribute".into()))?
        .decode_as()
        .map_err(|e| malformed("message-digest attribute", e))?;
    if message_digest.as_bytes() != digest.hash(tst_bytes).as_slice() {
        return Err(TokenError::Signature(
            "the message-digest attribute is not the digest of the TSTInfo: the content was changed".into(),
        ));
    }
    let mut pool: Vec<Cert> = Vec::new();
    for choice in sd.certificates.iter().flat_map(|s| s.0.iter()) {
        if let CertificateChoices::Certificate(c) = choice {
            let der = c
                .to_der()
                .map_err(|e| malformed("a certificate in the token", e))?;
            pool.push(Cert::from_der(der).map_err(TokenError::Malformed)?);
        }
    }
    pool.extend(trust.certs.iter().cloned());
    let signer = pool
        .iter()
        .find(|c| match &si.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                c.x509.tbs_certificate.issuer == ias.issuer
                    && c.x509.tbs_certificate.serial_number == ias.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                c.subject_key_id().as_deref() == Some(ski.0.as_bytes())
            }
        })
        .ok_or_else(|| {
            TokenError::Chain(
                "the signer's certificate is neither in the token nor in the CA file".into(),
            )
        })?;
    let signed_attrs = signed_attrs_bytes(token)?;
    let signature = si.signature.as_bytes();
    pkix::verify_signature(
        &signer.x509.tbs_certificate.subject_public_key_info,
        &si.signature_algorithm.oid,
        Some(digest),
        &signed_attrs,
        signature,
    )
    .map_err(|e| TokenError::Signature(format!("by {}: {e}", signer.subject())))?;

    // 4. ESS signing-certificate (RFC 3161 §2.4.1, RFC 5816 §2.2.1).
    check_signing_certificate(
        attr(rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2)?,
        attr(rfc5911::ID_AA_SIGNING_CERTIFICATE)?,
        signer,
    )?;

    // 5. The chain to the configured CA, at the token's time.
    let gen_time = tst.gen_time.to_unix_duration();
    let chain = pkix::chain_to_trusted(signer, &pool, &trust.certs, gen_time.as_secs())
        .map_err(TokenError::Chain)?;

    // 6. A timestamping certificate (RFC 3161 §2.3).
    pkix::check_tsa_usage(signer).map_err(TokenError::KeyUsage)?;

    let gen_time = time::OffsetDateTime::from_unix_timestamp_nanos(gen_time.as_nanos() as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| tst.gen_time.to_date_time().to_string());
    Ok(Verified {
        timestamp: Timestamp {
            gen_time,
            serial: hex::encode(tst.serial_number.as_bytes()),
            tsa: signer.subject(),
            policy: tst.policy.to_string(),
        },
        nonce: tst
            .nonce
            .as_ref()
            .map(|n| strip_zeros(n.as_bytes()).to_vec()),
        chain,
    })
}

/// An INTEGER's magnitude without leading zero bytes, for comparing nonces.
pub(crate) fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// ESSCertIDv2 (RFC 5035 §5.4.1.1): hashAlgorithm DEFAULT SHA-256, certHash, issuerSerial.
#[derive(Clone, Debug, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

/// SigningCertificateV2 (RFC 5035 §5.4.1.1).
#[derive(Clone, Debug, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

/// ESSCertID (RFC 2634 §5.4.1): a SHA-1 hash of the certificate.
#[derive(Clone, Debug, Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

/// SigningCertificate (RFC 2634 §5.4).
#[derive(Clone, Debug, Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

/// The first ESSCertID of the signing-certificate attribute must hash to the signer's
/// certificate (RFC 5035 §5.4: the first one identifies the signing certificate).
fn check_signing_certificate(
    v2: Option<Any>,
    v1: Option<Any>,
    signer: &Cert,
) -> Result<(), TokenError> {
    let bad = |e: der::Error| TokenError::Malformed(format!("signing-certificate attribute: {e}"));
    let (named, computed) = if let Some(v2) = v2 {
        let sc: SigningCertificateV2 = v2.decode_as().map_err(bad)?;
        let first = sc.certs.first().ok_or_else(|| {
            TokenError::Signature("the signing-certificate-v2 attribute is empty".into())
        })?;
        let alg = first
            .hash_algorithm
            .as_ref()
            .map_or(rfc5912::ID_SHA_256, |a| a.oid);
        let hash = Digest::from_oid(&alg)
            .map_err(|e| TokenError::Unsupported(format!("ESSCertIDv2 {e}")))?;
        (first.cert_hash.as_bytes().to_vec(), hash.hash(&signer.der))
    } else if let Some(v1) = v1 {
        use sha1::Digest as _;
        let sc: SigningCertificate = v1.decode_as().map_err(bad)?;
        let first = sc.certs.first().ok_or_else(|| {
            TokenError::Signature("the signing-certificate attribute is empty".into())
        })?;
        (
            first.cert_hash.as_bytes().to_vec(),
            sha1::Sha1::digest(&signer.der).to_vec(),
        )
    } else {
        return Err(TokenError::Signature(
            "no ESS signing-certificate attribute names the TSA certificate (RFC 3161 §2.4.1)"
                .into(),
        ));
    };
    if named != computed {
        return Err(TokenError::Signature(format!(
            "the ESS signing-certificate attribute names another certificate than the signer's ({})",
            signer.subject()
        )));
    }
    Ok(())
}

/// One DER TLV at the start of `input`: (tag byte, the whole TLV, its value, the rest).
/// Definite lengths only (DER, X.690 §10.1).
/// A DER element: tag, header bytes, contents, and what follows it.
pub(crate) type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

pub(crate) fn tlv(input: &[u8]) -> Result<Tlv<'_>, String> {
    let short = || "truncated DER".to_string();
    let tag = *input.first().ok_or_else(short)?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte DER tags are not expected here".into());
    }
    let first = *input.get(1).ok_or_else(short)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err("indefinite or oversized DER length".into());
        }
        let bytes = input.get(2..2 + n).ok_or_else(short)?;
        (
            bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize),
            2 + n,
        )
    };
    let end = header.checked_add(len).ok_or_else(short)?;
    let whole = input.get(..end).ok_or_else(short)?;
    Ok((tag, whole, &whole[header..], &input[end..]))
}

/// The DER of the signer's signed attributes as signed: the `[0] IMPLICIT` field of the
/// SignerInfo exactly as it was sent, re-tagged as a SET OF (RFC 5652 §5.4). Taken from the
/// raw token, not re-encoded, so a TSA's own attribute order is kept.
fn signed_attrs_bytes(token: &[u8]) -> Result<Vec<u8>, TokenError> {
    let walk = || -> Result<Vec<u8>, String> {
        let (_, _, content_info, _) = tlv(token)?;
        let (_, _, _, rest) = tlv(content_info)?; // contentType
        let (_, _, explicit, _) = tlv(rest)?; // [0] EXPLICIT content
        let (_, _, signed_data, _) = tlv(explicit)?;
        let mut rest = signed_data;
        let mut last = None;
        while !rest.is_empty() {
            let (tag, _, value, next) = tlv(rest)?;
            last = Some((tag, value));
            rest = next;
        }
        // signerInfos is the last field of SignedData, a SET (0x31).
        let Some((0x31, signer_infos)) = last else {
            return Err("no signerInfos".into());
        };
        let (_, _, signer_info, _) = tlv(signer_infos)?;
        let (_, _, _, rest) = tlv(signer_info)?; // version
        let (_, _, _, rest) = tlv(rest)?; // sid
        let (_, _, _, rest) = tlv(rest)?; // digestAlgorithm
        let (tag, whole, _, _) = tlv(rest)?;
        if tag != 0xa0 {
            return Err("no signed attributes".into());
        }
        let mut out = whole.to_vec();
        out[0] = 0x31;
        Ok(out)
    };
    walk().map_err(|e| TokenError::Malformed(format!("locating the signed attributes: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_der_with_a_sha256_imprint_and_a_positive_nonce() {
        let req = request(b"hello").unwrap();
        let parsed = TimeStampReq::from_der(&req.der).unwrap();
        assert_eq!(
            parsed.message_imprint.hashed_message.as_bytes(),
            Digest::Sha256.hash(b"hello").as_slice()
        );
        assert!(parsed.cert_req);
        assert_eq!(parsed.nonce.unwrap().as_bytes(), req.nonce.as_slice());
        assert!(req.nonce[0] & 0x80 == 0 && req.nonce[0] != 0);
    }

    #[test]
    fn tlv_reads_short_and_long_lengths() {
        let long: Vec<u8> = [vec![0x04, 0x81, 0x80], vec![7; 128], vec![0x05, 0x00]].concat();
        let (tag, whole, value, rest) = tlv(&long).unwrap();
        assert_eq!(
            (tag, whole.len(), value.len(), rest),
            (0x04, 131, 128, &[0x05, 0x00][..])
        );
        assert!(tlv(&[0x30, 0x05, 0x01]).is_err());
        assert!(tlv(&[0x30, 0x80]).is_err());
    }
}
