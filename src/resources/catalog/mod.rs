//! The catalog: products and their prices.
pub mod price_data;
pub mod prices;
pub mod products;
