// Prints, as "name hex" lines, the msgpack that rmp-serde writes for the
// messages tests/unit/test_net_wire.c builds with the node's codec.  The
// types mirror the wire shapes of Hyperware's KernelMessage and
// HandshakePayload (docs/node.md, "Networking"): structs as arrays,
// addresses as their strings, bytes as Vec<u8>, enums externally tagged.
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
struct HandshakePayload {
    protocol_version: u8,
    name: String,
    signature: Vec<u8>,
    proxy_request: bool,
}

#[derive(Serialize)]
struct RoutingRequest {
    protocol_version: u8,
    source: String,
    signature: Vec<u8>,
    target: String,
}

#[derive(Serialize)]
struct Capability {
    issuer: String,
    params: String,
}

#[derive(Serialize)]
struct Request {
    inherit: bool,
    expects_response: Option<u64>,
    body: Vec<u8>,
    metadata: Option<String>,
    capabilities: Vec<(Capability, Vec<u8>)>,
}

#[derive(Serialize)]
struct Response {
    inherit: bool,
    body: Vec<u8>,
    metadata: Option<String>,
    capabilities: Vec<(Capability, Vec<u8>)>,
}

#[derive(Serialize)]
enum Message {
    Request(Request),
    Response((Response, Option<Vec<u8>>)),
}

#[derive(Serialize)]
struct Blob {
    mime: Option<String>,
    bytes: Vec<u8>,
}

#[derive(Serialize)]
struct KernelMessage {
    id: u64,
    source: String,
    target: String,
    rsvp: Option<String>,
    message: Message,
    lazy_load_blob: Option<Blob>,
}

#[derive(Serialize)]
struct HnsUpdate {
    name: String,
    public_key: String,
    ips: Vec<String>,
    ports: BTreeMap<String, u16>,
    routers: Vec<String>,
}

#[derive(Serialize)]
#[allow(dead_code)]
enum NetAction {
    ConnectionRequest(String),
    HnsUpdate(HnsUpdate),
    HnsBatchUpdate(Vec<HnsUpdate>),
    GetPeers,
    GetPeer(String),
    GetDiagnostics,
    Sign,
    Verify { from: String, signature: Vec<u8> },
}

#[derive(Serialize)]
#[allow(dead_code)]
enum NodeRouting {
    Routers(Vec<String>),
    Direct { ip: String, ports: BTreeMap<String, u16> },
}

#[derive(Serialize)]
struct Identity {
    name: String,
    networking_key: String,
    routing: NodeRouting,
}

#[derive(Serialize)]
#[allow(dead_code)]
enum NetResponse {
    Accepted(String),
    Rejected(String),
    Peers(Vec<Identity>),
    Peer(Option<Identity>),
    Diagnostics(String),
    Signed,
    Verified(bool),
}

fn hns(name: &str, ips: &[&str], ports: &[(&str, u16)], routers: &[&str]) -> HnsUpdate {
    HnsUpdate {
        name: s(name),
        public_key: "ab".repeat(32),
        ips: ips.iter().map(|x| s(x)).collect(),
        ports: ports.iter().map(|(k, v)| (s(k), *v)).collect(),
        routers: routers.iter().map(|x| s(x)).collect(),
    }
}

fn direct(name: &str, tcp: u16, ws: u16) -> Identity {
    let mut ports = BTreeMap::new();
    if tcp != 0 {
        ports.insert(s("tcp"), tcp);
    }
    if ws != 0 {
        ports.insert(s("ws"), ws);
    }
    Identity {
        name: s(name),
        networking_key: "cd".repeat(32),
        routing: NodeRouting::Direct { ip: s("127.0.0.1"), ports },
    }
}

fn print<T: Serialize>(name: &str, v: &T) {
    let bytes = rmp_serde::to_vec(v).expect("rmp-serde encodes");
    let hex: String = bytes.iter().map(|b| format!("{:02x}", b)).collect();
    println!("{} {}", name, hex);
}

fn s(x: &str) -> String {
    x.to_string()
}

fn plain_request(id: u64, expects: Option<u64>) -> KernelMessage {
    KernelMessage {
        id,
        source: s("a.os@p:k:u"),
        target: s("b.os@p:k:u"),
        rsvp: None,
        message: Message::Request(Request {
            inherit: false,
            expects_response: expects,
            body: vec![],
            metadata: None,
            capabilities: vec![],
        }),
        lazy_load_blob: None,
    }
}

fn main() {
    print(
        "hs1",
        &HandshakePayload {
            protocol_version: 1,
            name: s("fake.os"),
            signature: (0u8..64).collect(),
            proxy_request: false,
        },
    );
    print(
        "hs2",
        &HandshakePayload {
            protocol_version: 1,
            name: s("fake2.os"),
            signature: (0xc0u8..=0xff).collect(),
            proxy_request: true,
        },
    );
    print(
        "rr",
        &RoutingRequest {
            protocol_version: 1,
            source: s("a.os"),
            signature: (0x70u8..0xb0).collect(),
            target: s("t.os"),
        },
    );
    print(
        "req",
        &KernelMessage {
            id: 12345678901234567890,
            source: s("alice.os@chat:chat:template.os"),
            target: s("bob.os@chat:chat:template.os"),
            rsvp: Some(s("alice.os@chat:chat:template.os")),
            message: Message::Request(Request {
                inherit: false,
                expects_response: Some(30),
                body: br#"{"Send":"hi"}"#.to_vec(),
                metadata: None,
                capabilities: vec![],
            }),
            lazy_load_blob: None,
        },
    );
    print(
        "resp",
        &KernelMessage {
            id: 7,
            source: s("bob.os@chat:chat:template.os"),
            target: s("alice.os@chat:chat:template.os"),
            rsvp: None,
            message: Message::Response((
                Response {
                    inherit: false,
                    body: b"null".to_vec(),
                    metadata: Some(s("{}")),
                    capabilities: vec![(
                        Capability {
                            issuer: s("bob.os@chat:chat:template.os"),
                            params: s("\"messaging\""),
                        },
                        vec![0xff, 0x00, 0x80],
                    )],
                },
                Some(vec![1, 2, 3]),
            )),
            lazy_load_blob: Some(Blob {
                mime: Some(s("text/plain")),
                bytes: vec![0x68, 0x69, 0xc8],
            }),
        },
    );
    print(
        "hello",
        &KernelMessage {
            id: 1,
            source: s("fake2.os@net:distro:sys"),
            target: s("fake.os@net:distro:sys"),
            rsvp: None,
            message: Message::Request(Request {
                inherit: false,
                expects_response: None,
                body: b"hello".to_vec(),
                metadata: None,
                capabilities: vec![],
            }),
            lazy_load_blob: None,
        },
    );
    let ids: [u64; 10] = [
        0,
        127,
        128,
        255,
        256,
        65535,
        65536,
        4294967295,
        4294967296,
        u64::MAX,
    ];
    for (i, id) in ids.iter().enumerate() {
        print(&format!("id{}", i), &plain_request(*id, Some(*id)));
    }
    print(
        "big",
        &KernelMessage {
            id: 1,
            source: s("a.os@p:k:u"),
            target: format!("{}.os@p:k:u", "n".repeat(300)),
            rsvp: None,
            message: Message::Request(Request {
                inherit: true,
                expects_response: None,
                body: (0..300u32).map(|i| (i % 256) as u8).collect(),
                metadata: Some("m".repeat(40)),
                capabilities: (0..17u32)
                    .map(|i| {
                        (
                            Capability {
                                issuer: format!("c{}.os@p:k:u", i),
                                params: s("\"messaging\""),
                            },
                            vec![i as u8],
                        )
                    })
                    .collect(),
            }),
            lazy_load_blob: Some(Blob {
                mime: None,
                bytes: (0..70000u32).map(|i| (i * 7 % 256) as u8).collect(),
            }),
        },
    );
    print(
        "resp_plain",
        &KernelMessage {
            id: 2,
            source: s("b.os@p:k:u"),
            target: s("a.os@p:k:u"),
            rsvp: Some(s("c.os@p:k:u")),
            message: Message::Response((
                Response {
                    inherit: true,
                    body: vec![],
                    metadata: None,
                    capabilities: vec![],
                },
                None,
            )),
            lazy_load_blob: None,
        },
    );
    print("na_conn", &NetAction::ConnectionRequest(s("x.os")));
    print(
        "na_hns",
        &NetAction::HnsUpdate(hns("b.os", &["127.0.0.1"], &[("tcp", 10000), ("ws", 9000)], &[])),
    );
    print(
        "na_batch",
        &NetAction::HnsBatchUpdate(vec![
            hns("c.os", &[], &[], &["r1.os", "r2.os"]),
            hns("d.os", &["10.0.0.1", "10.0.0.2"], &[("ws", 65535)], &[]),
        ]),
    );
    print("na_peers", &NetAction::GetPeers);
    print("na_peer", &NetAction::GetPeer(s("b.os")));
    print("na_diag", &NetAction::GetDiagnostics);
    print("na_sign", &NetAction::Sign);
    print(
        "na_verify",
        &NetAction::Verify { from: s("alice.os@chat:chat:template.os"), signature: vec![1, 2, 255] },
    );
    print("nr_peer", &NetResponse::Peer(Some(direct("b.os", 10000, 9000))));
    print("nr_peer_none", &NetResponse::Peer(None));
    print(
        "nr_peers",
        &NetResponse::Peers(vec![
            direct("b.os", 0, 9000),
            Identity {
                name: s("c.os"),
                networking_key: "cd".repeat(32),
                routing: NodeRouting::Routers(vec![s("r1.os")]),
            },
        ]),
    );
    print("nr_signed", &NetResponse::Signed);
    print("nr_verified", &NetResponse::Verified(true));
    print("nr_diag", &NetResponse::Diagnostics(s("x")));
}
