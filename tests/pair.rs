//! PAIR between threads on every transport: typed ping-pong, multipart messages, and a
//! peer's garbage reported as a decode error that leaves the end usable.

mod common;

use std::time::Duration;

use common::{with_timeout, TRANSPORTS, WAIT};
use ztick::patterns::pair;
use ztick::{Endpoint, Engine, Error, SocketOptions};

#[test]
fn two_threads_play_ping_pong_on_every_transport() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = Engine::new().unwrap();
            let (mut here, mut there) =
                pair(&engine, &Endpoint::local(t, "pair"), &SocketOptions::default()).unwrap();
            let echo = std::thread::spawn(move || -> ztick::Result<u32> {
                let mut served = 0;
                loop {
                    let (seq, text): (u32, String) = there.recv_value(WAIT)?;
                    if text == "bye" {
                        return Ok(served);
                    }
                    there.send_value(&(seq, text.to_uppercase()))?;
                    served += 1;
                }
            });
            for seq in 0..100u32 {
                here.send_value(&(seq, format!("ping {seq}"))).unwrap();
                let (back, text): (u32, String) = here.recv_value(WAIT).unwrap();
                assert_eq!((back, text), (seq, format!("PING {seq}")), "{t}");
            }
            here.send_value(&(0u32, "bye")).unwrap();
            assert_eq!(echo.join().unwrap().unwrap(), 100, "{t}");
        });
    }
}

#[test]
fn multipart_messages_cross_whole_and_garbage_is_a_decode_error() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = Engine::new().unwrap();
            let (mut a, mut b) =
                pair(&engine, &Endpoint::local(t, "pair-mp"), &SocketOptions::default()).unwrap();
            a.send(&[b"header", b"", b"body"]).unwrap();
            assert_eq!(
                b.recv_timeout(WAIT).unwrap(),
                vec![b"header".to_vec(), vec![], b"body".to_vec()],
                "{t}"
            );

            a.send(&[&[0xff; 3]]).unwrap();
            let err = b.recv_value::<String>(WAIT).unwrap_err();
            assert!(matches!(err, Error::Decode { .. }), "{t}: {err}");
            assert!(err.to_string().contains("PAIR"), "{t}: names the socket: {err}");
            a.send(&[b"one", b"two"]).unwrap();
            let err = b.recv_value::<String>(WAIT).unwrap_err();
            assert!(err.to_string().contains("2 frames"), "{t}: {err}");
            // Still usable.
            a.send_value("fine").unwrap();
            assert_eq!(b.recv_value::<String>(WAIT).unwrap(), "fine");
            let err = b.recv_value::<String>(Duration::from_millis(10)).unwrap_err();
            assert!(matches!(err, Error::Timeout { .. }), "{t}: {err}");
        });
    }
}
