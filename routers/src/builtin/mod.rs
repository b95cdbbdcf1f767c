//! Built-in routers.

mod length;
mod random;

pub use length::LengthRouter;
pub use random::RandomRouter;
