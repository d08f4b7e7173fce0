//! `ping.ping`: which node and incarnation answered.

use bytes::Bytes;
use prost::Message as _;
use troupe_proto::mesh::PingReply;

use crate::mesh::NodeInfo;

/// Op name.
pub const OP: &str = "ping";

/// Answers this node's name and incarnation.
pub fn run(info: &NodeInfo) -> Bytes {
    PingReply {
        node: info.node.to_string(),
        incarnation: info.incarnation,
    }
    .encode_to_vec()
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_names_the_node_and_incarnation() {
        let info = NodeInfo::new("n7".into(), 42);
        let reply = PingReply::decode(run(&info)).unwrap();
        assert_eq!(reply.node, "n7");
        assert_eq!(reply.incarnation, 42);
    }
}
