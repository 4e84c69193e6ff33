//! Helpers of the logging and masking tests ("logs"): the strict form of
//! `assert_no_credentials`, which also refuses any piece of 16 characters of a credential.

/// The length of a credential piece that must never appear in any output.
pub const PIECE: usize = 16;

/// Fails the test if `text` holds any piece of [`PIECE`] characters of any of `secrets` (each
/// must be at least that long), naming the credential by its first 4 characters only.
pub fn assert_no_credential_piece(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(secret.len() >= PIECE, "a credential shorter than {PIECE}");
        for (at, piece) in secret.as_bytes().windows(PIECE).enumerate() {
            let piece = std::str::from_utf8(piece).unwrap_or_default();
            assert!(
                !text.contains(piece),
                "16 characters of a credential ({}..., from byte {at}) appear in the output:\n{text}",
                &secret[..4]
            );
        }
    }
}
