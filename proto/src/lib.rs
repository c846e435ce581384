//! Languard's public gRPC contract, package `languard.v1`, generated from `proto/languard/v1/*.proto`.
//!
//! The `.proto` files are the product's public API: every message and field is documented there, and
//! the same comments reach `grpcurl describe` through [`FILE_DESCRIPTOR_SET`].

/// Generated messages, clients and servers of package `languard.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("languard.v1");
}

/// The encoded `FileDescriptorSet` of every Languard proto file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/languard_descriptor.bin"));

pub use prost_types;
