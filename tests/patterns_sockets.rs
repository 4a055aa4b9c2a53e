//! The guide's chapter 5 on ztick: multipart messages are atomic, high-water marks are per
//! socket and bound what queues, and linger decides whether queued messages survive close.

mod common;

use std::time::Duration;

use common::{recv, sender, unbound, with_timeout, TRANSPORTS, WAIT};
use ztick::patterns::{PeerEvent, Socket};
use ztick::{
    BufferPool, Endpoint, Engine, Frame, Outbound, SocketKind, SocketOptions, SocketSpec, Transport,
};

#[test]
fn multipart_messages_arrive_whole_and_never_interleaved_on_every_transport() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = Engine::new().unwrap();
            let (tx, rx) = crossbeam_channel::unbounded();
            let mut b = engine.worker("pull");
            let pull = b.socket(SocketSpec::bind(SocketKind::Pull, Endpoint::local(t, "mp")));
            let puller = b.forward_to(tx).spawn().unwrap();
            let ep: Endpoint = puller.endpoint(pull).unwrap().parse().unwrap();
            let (pusher, push) = sender(engine.worker("push"), SocketSpec::connect(SocketKind::Push, ep));

            // Two application threads hand over at once: three-frame messages (one frame
            // pooled, one empty) and single frames. Each must arrive exactly as sent.
            let pool = BufferPool::new(256, 16);
            let threads: Vec<_> = (0..2u8)
                .map(|who| {
                    let h = pusher.handle();
                    let pool = pool.clone();
                    std::thread::spawn(move || {
                        for i in 0..200u8 {
                            if i % 2 == 0 {
                                let mut body = pool.get();
                                body.extend_from_slice(&[who, i, 0xAB]).unwrap();
                                let msg = Outbound::multipart([
                                    Frame::bytes(vec![b'H', who, i]),
                                    Frame::bytes(Vec::new()),
                                    Frame::pooled(body),
                                ])
                                .unwrap();
                                h.send(push, msg).unwrap();
                            } else {
                                h.send(push, vec![b'S', who, i]).unwrap();
                            }
                        }
                    })
                })
                .collect();
            for th in threads {
                th.join().unwrap();
            }
            for _ in 0..400 {
                let m = recv(&rx, "message").frames;
                match m[0][0] {
                    b'H' => {
                        let (who, i) = (m[0][1], m[0][2]);
                        assert_eq!(m, vec![vec![b'H', who, i], vec![], vec![who, i, 0xAB]], "{t}");
                    }
                    b'S' => assert_eq!(m.len(), 1, "{t}"),
                    other => panic!("{t}: unexpected first byte {other}"),
                }
            }
            assert_eq!(pusher.stop().unwrap().stats.sent, 400, "{t}");
        });
    }
}

/// Sends 64 KiB messages until the queue is really full: a send that finds no room for
/// 200 ms (time for libzmq's I/O thread to move what it can into the kernel) ends it.
/// Returns how many were taken.
fn fill(push: &mut Socket, cap: usize) -> usize {
    let body = vec![0u8; 64 * 1024];
    (0..cap).take_while(|_| push.send_timeout(&[&body], Duration::from_millis(200)).is_ok()).count()
}

#[test]
fn hwm_set_before_connecting_bounds_the_queue_per_socket() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = Engine::new().unwrap();
            let o = SocketOptions::default().recv_hwm_msgs(7);
            let pull = Socket::bind(&engine, SocketKind::Pull, &Endpoint::local(t, "hwm"), &o).unwrap();
            let ep: Endpoint = pull.endpoint().parse().unwrap();
            let o = SocketOptions::default().send_hwm_msgs(5).immediate(true); // immediate: queue only on a connected pipe
            let mut push = Socket::connect(&engine, SocketKind::Push, &ep, &o).unwrap();
            // The connection completes in the background; the first send waits for it.
            push.send_timeout(&[b"first"], WAIT).unwrap();
            let taken = 1 + fill(&mut push, 5000);
            if t == Transport::Inproc {
                // inproc has no kernel in between: the pipe holds exactly send + receive HWM.
                assert_eq!(taken, 5 + 7, "{t}");
            } else {
                // The kernel's socket buffers hold some more; libzmq's defaults (1000 + 1000)
                // would have taken all 5000 (over 300 MB).
                assert!((5 + 7..5000).contains(&taken), "{t}: {taken}");
            }
            drop(pull);
        });
    }
}

/// Queues `n` messages on a PUSH that connects to `ep` where nobody listens yet, closes it
/// with `linger` and ends its engine, then binds a PULL there and counts what arrives.
fn delivered_after_close(ep: &Endpoint, linger: Duration, n: usize) -> usize {
    let push_engine = Engine::new().unwrap();
    let o = SocketOptions::default()
        .linger(Some(linger))
        .reconnect(Duration::from_millis(20), Duration::from_millis(20));
    let mut push = Socket::connect(&push_engine, SocketKind::Push, ep, &o).unwrap();
    for i in 0..n {
        // Without ZMQ_IMMEDIATE a connecting socket queues before the peer exists.
        push.send_timeout(&[&(i as u32).to_le_bytes()], WAIT).unwrap();
    }
    drop(push);
    // Ending the engine terminates its libzmq context, which returns once every closed
    // socket has sent what it holds or its linger has run out.
    let mut closer = Some(std::thread::spawn(move || drop(push_engine)));
    if linger.is_zero() {
        // Close is asynchronous: only once the context is gone is "nothing can leave" a fact.
        if let Some(c) = closer.take() {
            c.join().unwrap();
        }
    }
    let engine = Engine::new().unwrap();
    let mut pull = Socket::bind(&engine, SocketKind::Pull, ep, &SocketOptions::default()).unwrap();
    let mut got = 0;
    let mut frames = Vec::new();
    // The wait after the last message (or instead of the first) only confirms that nothing
    // else is on its way.
    while pull.recv_into(&mut frames, Duration::from_millis(300)).unwrap() {
        assert_eq!(frames, vec![(got as u32).to_le_bytes().to_vec()], "in order");
        got += 1;
    }
    if let Some(c) = closer {
        c.join().unwrap(); // with a linger, it ended once everything was delivered
    }
    got
}

#[test]
fn linger_zero_discards_queued_messages_and_linger_delivers_them() {
    for t in [Transport::Ipc, Transport::Tcp] {
        with_timeout(WAIT, move || {
            assert_eq!(delivered_after_close(&unbound(t, "linger"), Duration::ZERO, 100), 0, "{t}: linger 0");
            assert_eq!(delivered_after_close(&unbound(t, "linger"), Duration::from_secs(5), 100), 100, "{t}");
        });
    }
}

#[test]
fn a_connecting_socket_sees_its_peer_arrive_and_leave() {
    for t in [Transport::Ipc, Transport::Tcp] {
        with_timeout(WAIT, move || {
            let engine = Engine::new().unwrap();
            let opts = SocketOptions::default();
            // Connect before anyone is bound, so the monitor is running before the
            // handshake can happen; libzmq retries the connection by itself.
            let ep = unbound(t, "linger");
            let mut push = Socket::connect(&engine, SocketKind::Push, &ep, &opts).unwrap();
            let mut peers = push.monitor_peers().unwrap();
            assert_eq!(peers.next_event(Duration::ZERO).unwrap(), None, "{t}: nobody there yet");
            let mut pull = Socket::bind(&engine, SocketKind::Pull, &ep, &opts).unwrap();
            assert_eq!(peers.next_event(WAIT).unwrap(), Some(PeerEvent::Connected), "{t}");
            push.send(&[b"hello"]).unwrap();
            assert_eq!(pull.recv_timeout(WAIT).unwrap(), vec![b"hello".to_vec()], "{t}");
            drop(pull);
            assert_eq!(peers.next_event(WAIT).unwrap(), Some(PeerEvent::Disconnected), "{t}");
            ep.remove_ipc_file();
        });
    }
}
