//! The operator API served over TLS with the node certificate, checked by its pin.

mod common;

use adi_node::client::Client;
use adi_node::tls;
use common::Net;
use hyper::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_tls_answers_a_client_that_pins_the_node_key_and_no_other() {
    let net = Net::init(&["PH", "CN"]);
    let config = net.config_path("PH");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("tls = false"), "{text}");
    std::fs::write(&config, text.replace("tls = false", "tls = true")).unwrap();
    let mut net = net;
    net.start_code("PH").await;
    let dir = net.member_dir("PH");
    let (cert, _) = tls::load_identity(&dir.join("keys/node.crt"), &dir.join("keys/node.key")).unwrap();
    let pin = hex::encode(tls::spki_pin(&cert).unwrap());
    let url = net.state.members[net.index("PH")].api_url.replace("http://", "https://");
    let token = net.state.members[net.index("PH")].token.clone();

    let pinned = Client::new(&url, Some(token.clone()), Some(&pin)).unwrap();
    let lines = pinned.call(Method::GET, "/api/v1/lines", None).await.unwrap();
    assert!(lines.as_array().unwrap().is_empty());

    let wrong_pin = hex::encode([7u8; 32]);
    let other = Client::new(&url, Some(token.clone()), Some(&wrong_pin)).unwrap();
    assert!(other.call(Method::GET, "/api/v1/lines", None).await.is_err());
    // Plain HTTP to the TLS port gets no API answer.
    let plain = Client::new(&net.state.members[net.index("PH")].api_url, Some(token), None).unwrap();
    assert!(plain.call(Method::GET, "/api/v1/lines", None).await.is_err());
    assert!(Client::new(&url, None, None).is_err(), "an https URL without a pin is refused by the client");
    net.stop_all().await;
}
