//! Types generated from `proto/leadscore/v1/leadscore.proto` (by `build.rs`), and the encoded
//! descriptor set served by reflection.

tonic::include_proto!("leadscore.v1");

/// Encoded descriptor set, for server reflection (and the test that checks [`super::wire`]
/// against the proto).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("leadscore_descriptor");
