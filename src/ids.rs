//! Stripe-style identifiers: a prefix and unguessable base62 characters.

use rand::Rng;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` random base62 characters from the thread's CSPRNG (~5.95 bits each).
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

/// `len` random decimal digits (network transaction IDs).
pub fn random_digits(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// A random version-4 UUID, lowercase and hyphenated.
pub fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Deterministic base62 text of `len` characters from some bytes.
pub fn base62_of(bytes: &[u8], len: usize) -> String {
    let mut n: u128 = bytes
        .iter()
        .take(16)
        .fold(0, |acc, b| acc << 8 | u128::from(*b));
    (0..len)
        .map(|_| {
            let c = BASE62[(n % 62) as usize] as char;
            n /= 62;
            c
        })
        .collect()
}

/// `prefix_` + 24 random characters (Stripe's usual length).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_base62(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_length_and_alphabet() {
        let id = new_id("cus");
        assert!(id.starts_with("cus_") && id.len() == 28);
        assert!(id[4..].bytes().all(|b| BASE62.contains(&b)));
        assert_ne!(new_id("evt"), new_id("evt"));
    }
}
