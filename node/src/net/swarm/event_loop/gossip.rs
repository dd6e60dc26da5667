//! The swarm task's side of gossipsub: subscriptions, and validated topics whose messages
//! wait for their subscriber's verdict before gossipsub forwards them.

use libp2p::{gossipsub, PeerId};
use tokio::sync::mpsc;

use super::{EventLoop, GOSSIP_QUEUE};
use crate::net::swarm::client::{GossipMessage, ValidatedMessage};
use crate::net::swarm::NetError;

impl EventLoop {
    pub(super) fn subscribe_validated(
        &mut self,
        topic: String,
    ) -> Result<mpsc::Receiver<ValidatedMessage>, NetError> {
        let topic = gossipsub::IdentTopic::new(topic);
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        gossipsub
            .set_topic_params(
                topic.clone(),
                crate::net::swarm::validated_topic_score_params(),
            )
            .map_err(|e| NetError::Gossip(e.to_string()))?;
        gossipsub
            .subscribe(&topic)
            .map_err(|e| NetError::Gossip(e.to_string()))?;
        let (sender, receiver) = mpsc::channel(GOSSIP_QUEUE);
        self.validators.insert(topic.hash(), sender);
        Ok(receiver)
    }

    pub(super) fn on_gossip(
        &mut self,
        propagation_source: PeerId,
        id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let verdict = self.hand_to_validator(propagation_source, &id, &message);
        if let Some(acceptance) = verdict {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &propagation_source, acceptance);
        }
        let Some(senders) = self.subscriptions.get_mut(&message.topic) else {
            return;
        };
        senders.retain(|sender| !sender.is_closed());
        for sender in senders.iter() {
            let delivered = sender.try_send(GossipMessage {
                topic: message.topic.to_string(),
                source: message.source,
                data: message.data.clone(),
            });
            if delivered.is_err() {
                tracing::debug!(topic = %message.topic, "gossip subscriber lagging, message dropped");
            }
        }
    }

    /// Gives a message to its topic's validator; returns the verdict to apply now, if the
    /// validator will not give one: accept for topics nobody validates (forwarded as
    /// before validation existed), ignore when the validator is gone or lagging.
    fn hand_to_validator(
        &self,
        propagation_source: PeerId,
        id: &gossipsub::MessageId,
        message: &gossipsub::Message,
    ) -> Option<gossipsub::MessageAcceptance> {
        let Some(validator) = self.validators.get(&message.topic) else {
            return Some(gossipsub::MessageAcceptance::Accept);
        };
        let held = ValidatedMessage {
            message: GossipMessage {
                topic: message.topic.to_string(),
                source: message.source,
                data: message.data.clone(),
            },
            id: id.clone(),
            propagation_source,
        };
        match validator.try_send(held) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!(topic = %message.topic, "validator lagging, message ignored");
                Some(gossipsub::MessageAcceptance::Ignore)
            }
            // Kept as a validator: the topic never falls back to accepting unvalidated.
            Err(mpsc::error::TrySendError::Closed(_)) => Some(gossipsub::MessageAcceptance::Ignore),
        }
    }
}
