//! X.509 as a timestamp verifier needs it: signatures (ECDSA P-256/P-384, RSA PKCS #1 v1.5),
//! a certificate chain from the TSA certificate to a configured CA, and the TSA certificate's
//! key usages (RFC 3161 §2.3).
//!
//! The chain check is RFC 5280 §6.1 reduced to what a pinned, offline trust store needs:
//! issuer names, signatures, validity at the token's time, and CA basic constraints.
//! Revocation, name constraints and policies are not checked (no network is assumed).

use const_oid::db::rfc5912 as oids;
use der::{Decode, Encode};
use spki::ObjectIdentifier;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;

/// A hash function named by an AlgorithmIdentifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    pub(crate) fn from_oid(oid: &ObjectIdentifier) -> Result<Digest, String> {
        match *oid {
            oids::ID_SHA_256 => Ok(Digest::Sha256),
            oids::ID_SHA_384 => Ok(Digest::Sha384),
            oids::ID_SHA_512 => Ok(Digest::Sha512),
            other => Err(format!(
                "hash algorithm {other} (only SHA-256, SHA-384 and SHA-512 are accepted)"
            )),
        }
    }

    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Digest::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Digest::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Digest::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// A certificate with the bytes it was read from.
#[derive(Clone, Debug)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub x509: Certificate,
}

impl Cert {
    pub(crate) fn from_der(der: Vec<u8>) -> Result<Cert, String> {
        let x509 =
            Certificate::from_der(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        Ok(Cert { der, x509 })
    }

    pub(crate) fn subject(&self) -> String {
        self.x509.tbs_certificate.subject.to_string()
    }

    fn issuer(&self) -> String {
        self.x509.tbs_certificate.issuer.to_string()
    }

    /// The tbsCertificate exactly as encoded (the bytes the issuer signed).
    fn tbs_bytes(&self) -> Result<&[u8], String> {
        let (_, _, cert_value, _) = crate::rfc3161::tlv(&self.der)?;
        let (_, tbs, _, _) = crate::rfc3161::tlv(cert_value)?;
        Ok(tbs)
    }

    fn extension<'a, T: Decode<'a>>(
        &'a self,
        oid: ObjectIdentifier,
    ) -> Result<Option<(bool, T)>, String> {
        let Some(ext) = self
            .x509
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == oid)
        else {
            return Ok(None);
        };
        let value = T::from_der(ext.extn_value.as_bytes())
            .map_err(|e| format!("extension {oid} of {}: {e}", self.subject()))?;
        Ok(Some((ext.critical, value)))
    }

    /// The subjectKeyIdentifier, when present.
    pub(crate) fn subject_key_id(&self) -> Option<Vec<u8>> {
        self.extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>(
            oids::ID_CE_SUBJECT_KEY_IDENTIFIER,
        )
        .ok()
        .flatten()
        .map(|(_, ski)| ski.0.as_bytes().to_vec())
    }

    /// Whether the certificate was valid at `at` (Unix seconds).
    fn valid_at(&self, at: u64) -> Result<(), String> {
        let v = &self.x509.tbs_certificate.validity;
        let (from, to) = (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        );
        if at < from || at > to {
            return Err(format!(
                "{} was not valid at the token's time (valid {} to {})",
                self.subject(),
                v.not_before,
                v.not_after
            ));
        }
        Ok(())
    }

    fn is_ca(&self) -> bool {
        let basic = matches!(
            self.extension::<BasicConstraints>(oids::ID_CE_BASIC_CONSTRAINTS),
            Ok(Some((_, BasicConstraints { ca: true, .. })))
        );
        let may_sign = match self.extension::<KeyUsage>(oids::ID_CE_KEY_USAGE) {
            Ok(Some((_, ku))) => ku.0.contains(KeyUsages::KeyCertSign),
            Ok(None) => true,
            Err(_) => false,
        };
        basic && may_sign
    }

    /// Whether `self` was signed by `issuer`'s key.
    fn signed_by(&self, issuer: &Cert) -> Result<(), String> {
        let sig = self
            .x509
            .signature
            .as_bytes()
            .ok_or_else(|| format!("the signature of {} is not whole bytes", self.subject()))?;
        verify_signature(
            &issuer.x509.tbs_certificate.subject_public_key_info,
            &self.x509.signature_algorithm.oid,
            None,
            self.tbs_bytes()?,
            sig,
        )
        .map_err(|e| {
            format!(
                "the signature on {} by {}: {e}",
                self.subject(),
                issuer.subject()
            )
        })
    }
}

/// Certificates read from a PEM file (one or more `CERTIFICATE` blocks).
pub(crate) fn certs_from_pem(pem: &[u8]) -> Result<Vec<Cert>, String> {
    let chain =
        Certificate::load_pem_chain(pem).map_err(|e| format!("not PEM certificates: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate in it".into());
    }
    chain
        .into_iter()
        .map(|c| {
            let der = c.to_der().map_err(|e| e.to_string())?;
            Ok(Cert { der, x509: c })
        })
        .collect()
}

/// Verifies `signature` over `message` with the key in `spki`. `sig_alg` is the signature
/// AlgorithmIdentifier's OID; for CMS, which may name only the key type there
/// (RFC 5652 §5.3 signatureAlgorithm), `digest` gives the hash.
pub(crate) fn verify_signature(
    spki: &spki::SubjectPublicKeyInfoOwned,
    sig_alg: &ObjectIdentifier,
    digest: Option<Digest>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    use signature::hazmat::PrehashVerifier;
    let need_digest =
        || digest.ok_or_else(|| format!("signature algorithm {sig_alg} names no hash"));
    let (ecdsa, hash) = match *sig_alg {
        oids::ECDSA_WITH_SHA_256 => (true, Digest::Sha256),
        oids::ECDSA_WITH_SHA_384 => (true, Digest::Sha384),
        oids::ECDSA_WITH_SHA_512 => (true, Digest::Sha512),
        oids::ID_EC_PUBLIC_KEY => (true, need_digest()?),
        oids::SHA_256_WITH_RSA_ENCRYPTION => (false, Digest::Sha256),
        oids::SHA_384_WITH_RSA_ENCRYPTION => (false, Digest::Sha384),
        oids::SHA_512_WITH_RSA_ENCRYPTION => (false, Digest::Sha512),
        oids::RSA_ENCRYPTION => (false, need_digest()?),
        other => {
            return Err(format!(
                "signature algorithm {other} is not supported (ECDSA P-256/P-384 and RSA PKCS #1 v1.5 are)"
            ))
        }
    };
    let prehash = hash.hash(message);
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or("the public key is not whole bytes")?;
    let key_alg = spki.algorithm.oid;
    if ecdsa {
        if key_alg != oids::ID_EC_PUBLIC_KEY {
            return Err(format!(
                "an ECDSA signature, but the key is of type {key_alg}"
            ));
        }
        let curve: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as().ok())
            .ok_or("the EC key names no curve")?;
        match curve {
            oids::SECP_256_R_1 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map_err(|e| format!("bad P-256 key: {e}"))?;
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|e| format!("bad ECDSA signature encoding: {e}"))?;
                key.verify_prehash(&prehash, &sig)
                    .map_err(|_| "the ECDSA P-256 signature is wrong".to_string())
            }
            oids::SECP_384_R_1 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map_err(|e| format!("bad P-384 key: {e}"))?;
                let sig = p384::ecdsa::Signature::from_der(signature)
                    .map_err(|e| format!("bad ECDSA signature encoding: {e}"))?;
                key.verify_prehash(&prehash, &sig)
                    .map_err(|_| "the ECDSA P-384 signature is wrong".to_string())
            }
            other => Err(format!(
                "EC curve {other} is not supported (P-256 and P-384 are)"
            )),
        }
    } else {
        use rsa::pkcs1::DecodeRsaPublicKey;
        if key_alg != oids::RSA_ENCRYPTION {
            return Err(format!(
                "an RSA signature, but the key is of type {key_alg}"
            ));
        }
        let key = rsa::RsaPublicKey::from_pkcs1_der(key_bytes)
            .map_err(|e| format!("bad RSA key: {e}"))?;
        let scheme = match hash {
            Digest::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            Digest::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            Digest::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        };
        key.verify(scheme, &prehash, signature)
            .map_err(|_| "the RSA signature is wrong".to_string())
    }
}

/// Follows issuers from `leaf` up to a certificate of `trusted`, each link checked by name,
/// signature and validity at `at` (Unix seconds); intermediates come from `pool`. A leaf
/// that is itself in `trusted` is pinned. Returns the subjects along the chain.
pub(crate) fn chain_to_trusted(
    leaf: &Cert,
    pool: &[Cert],
    trusted: &[Cert],
    at: u64,
) -> Result<Vec<String>, String> {
    const MAX_DEPTH: usize = 8;
    leaf.valid_at(at)?;
    let mut path = vec![leaf.subject()];
    if trusted.iter().any(|t| t.der == leaf.der) {
        return Ok(path);
    }
    let mut current = leaf.clone();
    for _ in 0..MAX_DEPTH {
        let issuer_name = &current.x509.tbs_certificate.issuer;
        let mut failures = Vec::new();
        for anchor in trusted
            .iter()
            .filter(|t| &t.x509.tbs_certificate.subject == issuer_name)
        {
            match current
                .signed_by(anchor)
                .and_then(|()| anchor.valid_at(at))
                .and_then(|()| {
                    if anchor.is_ca() {
                        Ok(())
                    } else {
                        Err(format!("{} is not a CA certificate", anchor.subject()))
                    }
                }) {
                Ok(()) => {
                    path.push(anchor.subject());
                    return Ok(path);
                }
                Err(e) => failures.push(e),
            }
        }
        let next = pool.iter().find(|p| {
            &p.x509.tbs_certificate.subject == issuer_name
                && p.der != current.der
                && p.is_ca()
                && current.signed_by(p).is_ok()
                && p.valid_at(at).is_ok()
        });
        match next {
            Some(p) => {
                path.push(p.subject());
                current = p.clone();
            }
            None if failures.is_empty() => {
                return Err(format!(
                    "no certificate in the token or the CA file issued {} (issuer {}); the TSA is not under the configured CA",
                    current.subject(),
                    current.issuer()
                ))
            }
            None => return Err(failures.join("; ")),
        }
    }
    Err(format!(
        "no trusted CA within {MAX_DEPTH} certificates of {}",
        leaf.subject()
    ))
}

/// RFC 3161 §2.3: the TSA certificate has exactly one extended key usage, id-kp-timeStamping,
/// in a critical extension; and a key usage, when present, that allows signatures.
pub(crate) fn check_tsa_usage(cert: &Cert) -> Result<(), String> {
    let who = cert.subject();
    match cert.extension::<ExtendedKeyUsage>(oids::ID_CE_EXT_KEY_USAGE)? {
        None => {
            return Err(format!(
                "{who} has no extended key usage; a TSA certificate must have id-kp-timeStamping (RFC 3161 §2.3)"
            ))
        }
        Some((false, _)) => {
            return Err(format!(
                "{who}: the extended key usage extension must be critical (RFC 3161 §2.3)"
            ))
        }
        Some((true, eku)) if eku.0 != [oids::ID_KP_TIME_STAMPING] => {
            let got: Vec<String> = eku.0.iter().map(ToString::to_string).collect();
            return Err(format!(
                "{who}: extended key usage is [{}], must be only id-kp-timeStamping {} (RFC 3161 §2.3)",
                got.join(", "),
                oids::ID_KP_TIME_STAMPING
            ));
        }
        Some(_) => {}
    }
    if let Some((_, ku)) = cert.extension::<KeyUsage>(oids::ID_CE_KEY_USAGE)? {
        if !ku.0.contains(KeyUsages::DigitalSignature) && !ku.0.contains(KeyUsages::NonRepudiation)
        {
            return Err(format!("{who}: key usage allows no signatures"));
        }
    }
    Ok(())
}
