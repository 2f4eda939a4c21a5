//! The one builder of a job's queue message: its JSON payload, the model
//! whose queues carry it and the routing key of the queue it waits in.
//! The submit path and a requeue both build it here.

use uuid::Uuid;

use crate::job::{JobKind, JobMessage, JobParams};

/// A job's message, ready for the outbox and the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub job_id: Uuid,
    /// The model whose queues carry it (the job's `params.model`).
    pub model: String,
    /// The queue it waits in, from [`super::Topology::routing_key`].
    pub routing_key: String,
    pub payload: Vec<u8>,
}

impl Outgoing {
    pub fn new(
        job_id: Uuid,
        account_id: Uuid,
        kind: JobKind,
        params: JobParams,
        routing_key: String,
    ) -> Result<Self, serde_json::Error> {
        let model = params.model.clone().unwrap_or_default();
        let payload = serde_json::to_vec(&JobMessage {
            job_id,
            account_id,
            kind,
            model: model.clone(),
            params,
        })?;
        Ok(Self {
            job_id,
            model,
            routing_key,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Lane, Topology};

    #[test]
    fn the_message_names_the_model_of_its_parameters_and_reads_back_whole() {
        let params = JobParams {
            model: Some("whisper-tiny.en".into()),
            language: Some("en".into()),
            ..JobParams::default()
        };
        let key = Topology::routing_key("whisper-tiny.en", Lane::Bulk);
        let (job, account) = (Uuid::now_v7(), Uuid::now_v7());
        let out = Outgoing::new(
            job,
            account,
            JobKind::Transcribe,
            params.clone(),
            key.clone(),
        )
        .expect("encodes");
        assert_eq!(
            (out.model.as_str(), out.routing_key),
            ("whisper-tiny.en", key)
        );
        let back: JobMessage = serde_json::from_slice(&out.payload).expect("decodes");
        assert_eq!(
            back,
            JobMessage {
                job_id: job,
                account_id: account,
                kind: JobKind::Transcribe,
                model: "whisper-tiny.en".into(),
                params,
            }
        );
    }
}
