//! The catalog: products and their prices.
pub mod prices;
pub mod products;
