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

/// `prefix_` + 24 random characters (Stripe's usual length).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_base62(24))
}

/// Customers carry 14 characters after the prefix, as Stripe's do.
pub fn new_customer_id() -> String {
    format!("cus_{}", random_base62(14))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_length_and_alphabet() {
        let id = new_customer_id();
        assert!(id.starts_with("cus_") && id.len() == 18);
        assert!(id[4..].bytes().all(|b| BASE62.contains(&b)));
        assert_ne!(new_id("evt"), new_id("evt"));
    }
}
