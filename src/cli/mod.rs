//! Client commands of the `rampart` binary (they talk to a server over HTTP).

pub mod upload;
