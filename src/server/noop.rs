//! The no-op `LeadScoring` (`leadscore serve --noop`): the throughput ceiling `leadscore bench`
//! compares the real server with.
//!
//! It is the generated tonic server, so prost decodes each request in full (every lead's
//! `fields` map) before the handler returns a constant. Everything else (transport, health,
//! reflection) is the real server's.

use crate::pb;
use crate::pb::lead_scoring_server::LeadScoring;
use tonic::{Request, Response, Status};

/// Returns empty answers, after prost decoded the request.
#[derive(Debug, Default)]
pub struct Noop;

#[tonic::async_trait]
impl LeadScoring for Noop {
    async fn score_lead(
        &self,
        request: Request<pb::ScoreLeadRequest>,
    ) -> Result<Response<pb::ScoreLeadResponse>, Status> {
        drop(request);
        Ok(Response::new(pb::ScoreLeadResponse::default()))
    }

    async fn score_leads(
        &self,
        request: Request<pb::ScoreLeadsRequest>,
    ) -> Result<Response<pb::ScoreLeadsResponse>, Status> {
        drop(request);
        Ok(Response::new(pb::ScoreLeadsResponse::default()))
    }

    async fn get_model_info(
        &self,
        _request: Request<pb::GetModelInfoRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        Ok(Response::new(pb::ModelInfo::default()))
    }
}
