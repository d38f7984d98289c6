//! Proof bundles (`.tlog-proof` files): offline verification with only the log's
//! public key, and tamper tests that flip every byte of a bundle and check that
//! verification fails naming the damaged item.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::receipt_entry;
use veilgrid_core::sign::SigningIdentity;
use veilgrid_zk::log::{
    MAX_BUNDLE_BYTES, MemoryStore, ProofBundle, TLOG_PROOF_HEADER, TransparencyLog,
};
use veilgrid_zk::note::{LogSigner, LogVerifier};
use veilgrid_zk::{BundleItem, Error};

const ORIGIN: &str = "veilgrid.test/audit-log";

struct Fixture {
    log: TransparencyLog<MemoryStore>,
    vkey: String,
}

fn fixture(n: u64) -> Fixture {
    let provider = SigningIdentity::generate();
    let signer = LogSigner::new(ORIGIN, SigningIdentity::generate()).unwrap();
    let mut log = TransparencyLog::open(MemoryStore::new(), signer).unwrap();
    for i in 0..n {
        log.append(&receipt_entry(&provider, i)).unwrap();
    }
    log.checkpoint().unwrap();
    let vkey = log.verifier().to_vkey();
    Fixture { log, vkey }
}

/// What an auditor does with a bundle file: parse it and verify the receipt in it
/// with nothing but the log's verifier key string.
fn audit(vkey: &str, file: &[u8]) -> Result<(), Error> {
    let verifier = LogVerifier::from_vkey(vkey).unwrap();
    let bundle = ProofBundle::parse(file)?;
    bundle.verify_receipt(&verifier).map(|_| ())
}

#[test]
fn bundles_verify_offline_with_only_the_log_key() {
    let f = fixture(13);
    for index in 0..13 {
        let text = f.log.bundle(index).unwrap().to_text();
        assert!(text.starts_with(TLOG_PROOF_HEADER));
        let parsed = ProofBundle::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.to_text(), text);
        let verifier = LogVerifier::from_vkey(&f.vkey).unwrap();
        let (receipt, verified) = parsed.verify_receipt(&verifier).unwrap();
        assert_eq!(verified.index, index);
        assert_eq!(verified.checkpoint.size(), 13);
        assert_eq!(receipt.receipt.price, 10 + index);
    }
}

/// The item a byte at `pos` of `text` belongs to.
fn item_at(text: &str, pos: usize) -> BundleItem {
    let header_end = TLOG_PROOF_HEADER.len() + 1;
    let extra_end = text[header_end..].find('\n').unwrap() + header_end + 1;
    let checkpoint_start = text.find("\n\n").unwrap() + 2;
    if pos < header_end {
        BundleItem::Header
    } else if pos < extra_end {
        BundleItem::Receipt
    } else if pos < checkpoint_start {
        BundleItem::InclusionProof
    } else {
        BundleItem::Checkpoint
    }
}

#[test]
fn flipping_any_byte_of_a_bundle_fails_verification_naming_the_item() {
    let f = fixture(11);
    for index in [0u64, 6, 10] {
        let text = f.log.bundle(index).unwrap().to_text();
        audit(&f.vkey, text.as_bytes()).unwrap();
        for pos in 0..text.len() {
            for mask in [0x01u8, 0x20] {
                let mut bytes = text.clone().into_bytes();
                bytes[pos] ^= mask;
                let err = audit(&f.vkey, &bytes).expect_err(&format!(
                    "flip {mask:#x} at {pos} of bundle {index} verified"
                ));
                let expected = item_at(&text, pos);
                assert_eq!(
                    err.bundle_item(),
                    Some(expected),
                    "flip {mask:#x} at byte {pos} ({:?}) of bundle {index}: {err}",
                    text.as_bytes()[pos] as char
                );
            }
        }
    }
}

#[test]
fn without_a_receipt_check_an_altered_receipt_fails_the_inclusion_proof() {
    let f = fixture(6);
    let mut bundle = f.log.bundle(2).unwrap();
    bundle.entry[50] ^= 4;
    let err = bundle.verify(&f.log.verifier()).unwrap_err();
    assert_eq!(err.bundle_item(), Some(BundleItem::InclusionProof));
    assert!(err.to_string().contains("altered"), "{err}");
}

#[test]
fn altering_parsed_fields_fails_naming_the_item() {
    let f = fixture(9);
    let v = f.log.verifier();
    let good = f.log.bundle(4).unwrap();
    good.verify_receipt(&v).unwrap();

    let mut b = good.clone();
    b.index = 5;
    assert_eq!(
        b.verify_receipt(&v).unwrap_err().bundle_item(),
        Some(BundleItem::InclusionProof)
    );
    b.index = 9;
    assert_eq!(
        b.verify_receipt(&v).unwrap_err().bundle_item(),
        Some(BundleItem::InclusionProof)
    );

    let mut b = good.clone();
    b.inclusion.pop();
    assert_eq!(
        b.verify_receipt(&v).unwrap_err().bundle_item(),
        Some(BundleItem::InclusionProof)
    );

    let mut b = good.clone();
    b.inclusion[1][3] ^= 1;
    assert_eq!(
        b.verify_receipt(&v).unwrap_err().bundle_item(),
        Some(BundleItem::InclusionProof)
    );

    let mut b = good.clone();
    b.entry.truncate(10);
    assert_eq!(
        b.verify_receipt(&v).unwrap_err().bundle_item(),
        Some(BundleItem::Receipt)
    );

    let mut b = good.clone();
    b.checkpoint = b.checkpoint.replacen("\n9\n", "\n10\n", 1);
    assert_eq!(
        b.verify_receipt(&v).unwrap_err().bundle_item(),
        Some(BundleItem::Checkpoint)
    );

    // A checkpoint of another log (other key) is refused as a checkpoint failure.
    let other = fixture(9);
    let mut b = good.clone();
    b.checkpoint = other.log.latest_checkpoint().unwrap().note().to_owned();
    let err = b.verify_receipt(&v).unwrap_err();
    assert_eq!(err.bundle_item(), Some(BundleItem::Checkpoint));
    assert!(
        matches!(err, Error::Bundle { source, .. } if matches!(*source, Error::NoTrustedSignature { .. }))
    );

    // The right log key, a bundle from another log: refused.
    assert!(other.log.bundle(4).unwrap().verify(&v).is_err());
}

#[test]
fn parse_limits_and_structure_errors_are_typed() {
    let f = fixture(5);
    let text = f.log.bundle(1).unwrap().to_text();

    let huge = vec![b'a'; MAX_BUNDLE_BYTES + 1];
    assert!(matches!(
        ProofBundle::parse(&huge),
        Err(Error::Bundle { item: BundleItem::Header, source }) if matches!(*source, Error::TooLarge { .. })
    ));

    let (head, tail) = text.split_once("\n\n").unwrap();
    let many_hashes = format!(
        "{head}\n{}\n{tail}",
        vec!["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; 70].join("\n")
    );
    assert!(matches!(
        ProofBundle::parse(many_hashes.as_bytes()),
        Err(Error::Bundle { item: BundleItem::InclusionProof, source }) if matches!(*source, Error::TooLarge { .. })
    ));

    let big_extra = format!(
        "{TLOG_PROOF_HEADER}\nextra {}\nindex 0\n\n",
        "A".repeat(100_000)
    );
    assert!(matches!(
        ProofBundle::parse(big_extra.as_bytes()),
        Err(Error::Bundle { item: BundleItem::Receipt, source }) if matches!(*source, Error::TooLarge { .. })
    ));

    let cases: [(&str, BundleItem); 7] = [
        ("", BundleItem::Header),
        ("c2sp.org/tlog-proof@v2\n", BundleItem::Header),
        ("c2sp.org/tlog-proof@v1\nindex 0\n\n", BundleItem::Receipt),
        (
            "c2sp.org/tlog-proof@v1\nextra AA==\nindex 01\n\n",
            BundleItem::InclusionProof,
        ),
        (
            "c2sp.org/tlog-proof@v1\nextra AA==\nindex 0\nAAAA\n\n",
            BundleItem::InclusionProof,
        ),
        (
            "c2sp.org/tlog-proof@v1\nextra AA==\nindex 0\n",
            BundleItem::InclusionProof,
        ),
        (
            "c2sp.org/tlog-proof@v1\nextra AA==\nindex 0\n\nno checkpoint\n",
            BundleItem::Checkpoint,
        ),
    ];
    for (case, item) in cases {
        let err = ProofBundle::parse(case.as_bytes()).unwrap_err();
        assert_eq!(err.bundle_item(), Some(item), "{case:?}: {err}");
    }
    assert_eq!(
        ProofBundle::parse(&[0xff, 0xfe]).unwrap_err().bundle_item(),
        Some(BundleItem::Header)
    );
}

#[test]
fn bundles_of_the_go_tlog_proof_example_shape_parse() {
    // The layout of the example in c2sp.org/tlog-proof (with a real checkpoint).
    let f = fixture(3);
    let cp = f.log.latest_checkpoint().unwrap().note().to_owned();
    let text = format!(
        "c2sp.org/tlog-proof@v1\nextra YWdl\nindex 2\ngSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\nB95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n\n{cp}"
    );
    let b = ProofBundle::parse(text.as_bytes()).unwrap();
    assert_eq!(
        (b.entry.as_slice(), b.index, b.inclusion.len()),
        (&b"age"[..], 2, 2)
    );
    assert_eq!(b.to_text(), text);
    // It parses, but it is not a proof of anything in this log.
    assert_eq!(
        b.verify(&f.log.verifier()).unwrap_err().bundle_item(),
        Some(BundleItem::InclusionProof)
    );
}
