//! Differential: the plain-UDP shortcut against the general walker (the
//! oracle of tests/fastpath.rs). For any packet the shortcut either declines
//! (leaving nothing behind) or finds exactly the walker's slots and
//! checksums; `locate` (shortcut first) equals the walker alone; and
//! washing through the shortcut gives the same bytes and outcome as the
//! general path under three washers.
#![no_main]

use ipwash::packet::{locate, locate_general, locate_plain, Located};
use ipwash::pipeline::{wash_packet, Unparsed, Worker};
use ipwash_fuzz::{linktype_and_packet, washers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((lt, pkt)) = linktype_and_packet(data) else {
        return;
    };
    let (mut a, mut b, mut c) = (Located::new(), Located::new(), Located::new());
    let ra = locate(lt, pkt, &mut a);
    let rb = locate_general(lt, pkt, &mut b);
    assert_eq!(ra, rb);
    assert_eq!(a, b);
    if locate_plain(lt, pkt, &mut c) {
        assert!(rb.is_ok(), "the shortcut took a packet the walker refuses");
        assert_eq!(c, b, "the shortcut found other slots than the walker");
    } else {
        assert_eq!(c, Located::new(), "a declined packet leaves nothing behind");
    }

    // Fresh washers per input, so a finding replays on its own.
    for (mut wa, mut wb) in washers().into_iter().zip(washers()) {
        let mut fast = Worker::new(64);
        let mut general = Worker::new(64);
        general.shortcut = false;
        let (mut x, mut y) = (pkt.to_vec(), pkt.to_vec());
        let ox = wash_packet(&mut x, lt, &mut wa, &mut fast, Unparsed::Drop);
        let oy = wash_packet(&mut y, lt, &mut wb, &mut general, Unparsed::Drop);
        assert_eq!(ox, oy);
        assert_eq!(x, y, "the shortcut washed differently");
        assert_eq!(fast.loc.frag, general.loc.frag);
    }
});
