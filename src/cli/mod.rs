//! Client commands of the `rampart` binary (they talk to a server over HTTP).

pub mod follow;
pub mod upload;
pub mod watch;
