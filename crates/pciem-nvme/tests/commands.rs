//! Every command and every error status, on the mock backend with the
//! crate's test driver (stepping mode: deterministic).

use pciem_backend_mock::IrqKind;
use pciem_nvme::aer::event_dw0;
use pciem_nvme::command::{admin, nvm, Command};
use pciem_nvme::driver::{pattern, Driver, IrqSetup, PrpLayout};
use pciem_nvme::regs::*;
use pciem_nvme::{DoorbellWrite, LbaSize, MemStorage, Nvme, NvmeConfig, NvmeError, Status};

const SIZE: u64 = 40 << 20;

fn config(lba_size: LbaSize) -> NvmeConfig {
    NvmeConfig {
        serial: "TESTSERIAL42".into(),
        model: "Test Model".into(),
        firmware: "1.2.3".into(),
        vendor_id: 0x1b36,
        subsystem_vendor_id: 0x1af4,
        size: SIZE,
        lba_size,
        ..NvmeConfig::default()
    }
}

/// A controller with 2 I/O queue pairs of 16 entries, MSI-X.
fn setup_with(lba_size: LbaSize) -> (Driver, MemStorage) {
    let mem = MemStorage::new(SIZE);
    let nvme = Nvme::new(config(lba_size), Box::new(mem.clone())).unwrap();
    let mut d = Driver::new(nvme, true).unwrap();
    d.bring_up(IrqSetup::MsiX, 2, 16).unwrap();
    (d, mem)
}

fn setup() -> (Driver, MemStorage) {
    setup_with(LbaSize::B512)
}

fn cmd(opcode: u8, nsid: u32, cdw: [u32; 6]) -> Command {
    Command {
        opcode,
        nsid,
        cdw,
        ..Command::default()
    }
}

fn status(d: &mut Driver, qid: u16, c: Command) -> Status {
    d.run(qid, c).unwrap().status
}

#[test]
fn identify_reports_the_configured_identity() {
    let (mut d, _) = setup_with(LbaSize::B4096);
    let id = d.identify(0x01, 0).unwrap();
    assert_eq!(u16::from_le_bytes([id[0], id[1]]), 0x1b36, "VID");
    assert_eq!(u16::from_le_bytes([id[2], id[3]]), 0x1af4, "SSVID");
    assert_eq!(&id[4..24], b"TESTSERIAL42        ");
    assert_eq!(&id[24..34], b"Test Model");
    assert_eq!(&id[64..72], b"1.2.3   ");
    assert_eq!(id[77], MDTS);
    assert_eq!(u32::from_le_bytes(id[80..84].try_into().unwrap()), 0x10400);
    assert_eq!(id[512], 0x66);
    assert_eq!(id[513], 0x44);
    assert_eq!(
        u32::from_le_bytes(id[516..520].try_into().unwrap()),
        1,
        "NN"
    );
    let oncs = u16::from_le_bytes([id[520], id[521]]);
    assert_eq!(oncs & 0x0C, 0x0C, "DSM and Write Zeroes");
    assert_eq!(id[525] & 1, 1, "VWC present");

    let ns = d.identify(0x00, 1).unwrap();
    let nsze = u64::from_le_bytes(ns[0..8].try_into().unwrap());
    assert_eq!(nsze, SIZE / 4096);
    assert_eq!(ns[128 + 2], 12, "LBADS");
    let list = d.identify(0x02, 0).unwrap();
    assert_eq!(&list[0..8], &[1, 0, 0, 0, 0, 0, 0, 0]);
    assert!(d.identify(0x02, 1).unwrap().iter().all(|&b| b == 0));
    let desc = d.identify(0x03, 1).unwrap();
    assert_eq!(&desc[0..2], &[2, 16], "NGUID descriptor");
    assert_eq!(&desc[20..22], &[3, 16], "UUID descriptor");
    assert!(d.identify(0x06, 0).unwrap().iter().all(|&b| b == 0));

    // Errors: unknown CNS, namespaces that do not exist.
    let t = d.prepare(4096, PrpLayout::default()).unwrap();
    let ident = |cns: u32, nsid: u32| {
        let mut c = cmd(admin::IDENTIFY, nsid, [cns, 0, 0, 0, 0, 0]);
        c.prp1 = t.prp.0;
        c
    };
    let cases = [
        (ident(0x1F, 0), Status::INVALID_FIELD),
        (ident(0x00, 0), Status::INVALID_NAMESPACE),
        (ident(0x00, 2), Status::INVALID_NAMESPACE),
        (ident(0x00, 0xFFFF_FFFF), Status::INVALID_NAMESPACE),
        (ident(0x02, 0xFFFF_FFFE), Status::INVALID_NAMESPACE),
        (ident(0x03, 7), Status::INVALID_NAMESPACE),
        (
            cmd(admin::IDENTIFY, 0, [0x06, 1 << 24, 0, 0, 0, 0]),
            Status::INVALID_FIELD,
        ),
    ];
    for (c, want) in cases {
        assert_eq!(status(&mut d, 0, c), want, "{c:?}");
    }
}

#[test]
fn features_are_stored_and_checked() {
    let (mut d, _) = setup();
    let get = |fid: u32, dw11: u32| cmd(admin::GET_FEATURES, 0, [fid, dw11, 0, 0, 0, 0]);
    let set = |fid: u32, dw11: u32| cmd(admin::SET_FEATURES, 0, [fid, dw11, 0, 0, 0, 0]);
    for (fid, value) in [
        (0x01u32, 0x0304_0503u32), // arbitration
        (0x08, 0x0A05),            // interrupt coalescing
        (0x0B, 0x0000_00FF),       // async event configuration
        (0x0F, 5000),              // keep alive timer
        (0x06, 0),                 // volatile write cache off
        (0x02, 0x20),              // power management: PS 0, workload hint 1
    ] {
        d.run_ok(0, "Set Features", set(fid, value)).unwrap();
        assert_eq!(
            d.run_ok(0, "Get Features", get(fid, 0)).unwrap().result,
            value
        );
    }
    d.run_ok(0, "Set", set(0x09, 3 | 1 << 16)).unwrap();
    assert_eq!(
        d.run_ok(0, "Get", get(0x09, 3)).unwrap().result,
        3 | 1 << 16
    );
    d.run_ok(0, "Set", set(0x04, 0x150)).unwrap();
    assert_eq!(d.run_ok(0, "Get", get(0x04, 0)).unwrap().result, 0x150);
    // Number of queues: granted as set at bring-up (2 pairs).
    assert_eq!(
        d.run_ok(0, "Get", get(0x07, 0)).unwrap().result,
        0x0001_0001
    );

    let cases = [
        (set(0x02, 1), Status::INVALID_FIELD), // power state 1 does not exist
        (set(0x7E, 0), Status::INVALID_FIELD), // unknown feature
        (get(0x7E, 0), Status::INVALID_FIELD),
        (set(0x01 | 1 << 31, 0), Status::FEATURE_NOT_SAVEABLE),
        (get(0x01 | 1 << 8, 0), Status::INVALID_FIELD), // SEL default: not supported
        (set(0x07, 0xFFFF), Status::INVALID_FIELD),
        (set(0x07, 0x0003_0003), Status::COMMAND_SEQUENCE_ERROR), // I/O queues exist
        (set(0x04, 0x0030_0000), Status::INVALID_FIELD),          // THSEL 3
        (set(0x09, MSIX_VECTORS), Status::INVALID_FIELD),
    ];
    for (c, want) in cases {
        assert_eq!(status(&mut d, 0, c), want, "{c:?}");
    }
}

#[test]
fn queue_creation_and_deletion_errors() {
    let (mut d, _) = setup();
    let page = d.harness().dma_alloc(8192).unwrap();
    let create_cq = |qid: u32, qsize: u32, flags: u32, prp1: u64| Command {
        prp1,
        ..cmd(admin::CREATE_CQ, 0, [qid | qsize << 16, flags, 0, 0, 0, 0])
    };
    let create_sq = |qid: u32, qsize: u32, cqid: u32, prp1: u64| Command {
        prp1,
        ..cmd(
            admin::CREATE_SQ,
            0,
            [qid | qsize << 16, 1 | cqid << 16, 0, 0, 0, 0],
        )
    };
    let cases = [
        (create_cq(0, 3, 3, page), Status::INVALID_QUEUE_ID),
        (create_cq(1, 3, 3, page), Status::INVALID_QUEUE_ID), // exists
        (create_cq(3, 3, 3, page), Status::INVALID_QUEUE_ID), // 2 granted
        (create_sq(3, 3, 1, page), Status::INVALID_QUEUE_ID),
        (create_sq(1, 3, 1, page), Status::INVALID_QUEUE_ID),
    ];
    for (c, want) in cases {
        assert_eq!(status(&mut d, 0, c), want, "{c:?}");
    }
    // Delete pair 2 to have a free identifier.
    assert_eq!(
        status(&mut d, 0, cmd(admin::DELETE_SQ, 0, [2, 0, 0, 0, 0, 0])),
        Status::SUCCESS
    );
    assert_eq!(
        status(&mut d, 0, cmd(admin::DELETE_CQ, 0, [2, 0, 0, 0, 0, 0])),
        Status::SUCCESS
    );
    let cases = [
        (create_cq(2, 0, 3, page), Status::INVALID_QUEUE_SIZE),
        (create_cq(2, 4096, 3, page), Status::INVALID_QUEUE_SIZE),
        (create_cq(2, 3, 2, page), Status::INVALID_FIELD), // not contiguous
        (create_cq(2, 3, 3, page + 8), Status::PRP_OFFSET_INVALID),
        (create_cq(2, 3, 3, 0), Status::PRP_OFFSET_INVALID),
        (
            create_cq(2, 3, 3 | (MSIX_VECTORS << 16), page),
            Status::INVALID_INTERRUPT_VECTOR,
        ),
        (create_sq(2, 3, 2, page), Status::CQ_INVALID), // CQ 2 is gone
        (create_sq(2, 3, 0, page), Status::CQ_INVALID),
        (create_sq(2, 0, 1, page), Status::INVALID_QUEUE_SIZE),
        (
            cmd(admin::DELETE_SQ, 0, [0, 0, 0, 0, 0, 0]),
            Status::INVALID_QUEUE_ID,
        ),
        (
            cmd(admin::DELETE_SQ, 0, [2, 0, 0, 0, 0, 0]),
            Status::INVALID_QUEUE_ID,
        ),
        (
            cmd(admin::DELETE_CQ, 0, [0, 0, 0, 0, 0, 0]),
            Status::INVALID_QUEUE_ID,
        ),
        (
            cmd(admin::DELETE_CQ, 0, [1, 0, 0, 0, 0, 0]),
            Status::INVALID_QUEUE_DELETION,
        ),
        (
            cmd(admin::DELETE_CQ, 0, [999, 0, 0, 0, 0, 0]),
            Status::INVALID_QUEUE_ID,
        ),
    ];
    for (c, want) in cases {
        assert_eq!(status(&mut d, 0, c), want, "{c:?}");
    }
    // A CQ whose SQ is deleted can go; several SQs may share one CQ.
    assert_eq!(
        status(&mut d, 0, create_cq(2, 7, 3 | 2 << 16, page)),
        Status::SUCCESS
    );
    assert_eq!(
        status(&mut d, 0, create_sq(2, 7, 1, page + 4096)),
        Status::SUCCESS
    );
    let (sqs, cqs) = d.nvme().unwrap().io_queues();
    assert_eq!((sqs, cqs), (vec![1, 2], vec![1, 2]));
}

#[test]
fn log_pages() {
    let (mut d, _) = setup();
    // An error to log: an unknown opcode.
    let bad = Command {
        cid: 0,
        ..cmd(0xC3, 0, [0; 6])
    };
    assert_eq!(status(&mut d, 0, bad), Status::INVALID_OPCODE);
    let log = |lid: u32, dwords: u32, offset: u32| {
        cmd(
            admin::GET_LOG_PAGE,
            0xFFFF_FFFF,
            [lid | (dwords - 1) << 16, 0, offset, 0, 0, 0],
        )
    };
    let err = d.admin_read("Get Log Page", log(0x01, 64, 0), 256).unwrap();
    assert_eq!(
        u64::from_le_bytes(err[0..8].try_into().unwrap()),
        1,
        "error count"
    );
    assert_eq!(
        u16::from_le_bytes([err[12], err[13]]) >> 1,
        Status::INVALID_OPCODE.field()
    );

    d.write_blocks(1, 0, &pattern(0, 4096, 1), 512, PrpLayout::default())
        .unwrap();
    d.read_blocks(1, 0, 8, 512, PrpLayout::default()).unwrap();
    let smart = d
        .admin_read("Get Log Page", log(0x02, 128, 0), 512)
        .unwrap();
    assert_eq!(
        u16::from_le_bytes([smart[1], smart[2]]),
        pciem_nvme::logs::TEMPERATURE
    );
    assert_eq!(smart[3], 100, "available spare");
    assert_eq!(smart[32], 1, "data units read");
    assert_eq!(smart[48], 1, "data units written");
    assert_eq!(smart[64], 1, "host reads");
    assert_eq!(smart[80], 1, "host writes");
    assert_eq!(smart[176], 1, "error log entries");
    // With an offset, and a length past the end (zero-filled).
    let part = d.admin_read("Get Log Page", log(0x02, 4, 64), 16).unwrap();
    assert_eq!(part[0], 1);
    let fw = d
        .admin_read("Get Log Page", log(0x03, 128, 0), 512)
        .unwrap();
    assert_eq!((fw[0], &fw[8..13]), (1, &b"1.2.3"[..]));

    let t = d.prepare(512, PrpLayout::default()).unwrap();
    let with = |mut c: Command| {
        c.prp1 = t.prp.0;
        c
    };
    let cases = [
        (with(log(0x7F, 4, 0)), Status::INVALID_LOG_PAGE),
        (with(log(0x02, 4, 2)), Status::INVALID_FIELD), // offset not dword aligned
        (with(log(0x02, 4, 512)), Status::INVALID_FIELD), // offset past the log
        (
            Command {
                nsid: 5,
                ..with(log(0x02, 4, 0))
            },
            Status::INVALID_NAMESPACE,
        ),
        (
            with(cmd(
                admin::GET_LOG_PAGE,
                0,
                [0x02 | 0xFFFF << 16, 0xFFFF, 0, 0, 0, 0],
            )),
            Status::INVALID_FIELD, // longer than MDTS
        ),
    ];
    for (c, want) in cases {
        assert_eq!(status(&mut d, 0, c), want, "{c:?}");
    }
}

#[test]
fn async_events_abort_and_keep_alive() {
    let (mut d, _) = setup();
    assert_eq!(
        status(&mut d, 0, cmd(admin::KEEP_ALIVE, 0, [0; 6])),
        Status::SUCCESS
    );
    // Four requests are held (AERL = 3); the fifth is refused.
    let aers: Vec<Command> = (0..4)
        .map(|_| Command {
            cid: d.cid(),
            ..cmd(admin::ASYNC_EVENT_REQUEST, 0, [0; 6])
        })
        .collect();
    d.submit(0, &aers).unwrap();
    assert!(d.poll(0).unwrap().is_none(), "held until an event");
    assert_eq!(d.nvme().unwrap().outstanding_event_requests(), 4);
    assert_eq!(
        status(&mut d, 0, cmd(admin::ASYNC_EVENT_REQUEST, 0, [0; 6])),
        Status::AER_LIMIT_EXCEEDED
    );
    // Abort of a held request completes it with Abort Requested.
    let abort = cmd(
        admin::ABORT,
        0,
        [u32::from(aers[3].cid) << 16, 0, 0, 0, 0, 0],
    );
    let abort_cid = d.cid();
    d.submit(
        0,
        &[Command {
            cid: abort_cid,
            ..abort
        }],
    )
    .unwrap();
    let a = d.reap(0).unwrap();
    let b = d.reap(0).unwrap();
    let (aborted, reply) = if a.cid == aers[3].cid { (a, b) } else { (b, a) };
    assert_eq!(aborted.status, Status::ABORT_REQUESTED);
    assert_eq!(
        (reply.cid, reply.status, reply.result & 1),
        (abort_cid, Status::SUCCESS, 0)
    );
    // Abort of anything else: not aborted (DW0 bit 0).
    let r = d
        .run(0, cmd(admin::ABORT, 0, [1 | 0x77 << 16, 0, 0, 0, 0, 0]))
        .unwrap();
    assert_eq!((r.status, r.result & 1), (Status::SUCCESS, 1));

    // An invalid doorbell write is an error event.
    assert_eq!(d.harness().take_device_errors(), []);
    d.harness().write32(0, sq_tail_doorbell(9), 1).unwrap();
    let ev = d.reap(0).unwrap();
    assert_eq!(ev.cid, aers[0].cid);
    assert_eq!(ev.result, event_dw0(0, 0, 1));
    // A value past the queue's end: masked until the error log is read.
    d.harness().write32(0, sq_tail_doorbell(1), 100).unwrap();
    assert!(d.poll(0).unwrap().is_none());
    d.admin_read(
        "Get Log Page",
        cmd(admin::GET_LOG_PAGE, 0, [0x01 | 15 << 16, 0, 0, 0, 0, 0]),
        64,
    )
    .unwrap();
    d.harness().write32(0, cq_head_doorbell(1), 100).unwrap();
    let ev = d.reap(0).unwrap();
    assert_eq!((ev.cid, ev.result), (aers[1].cid, event_dw0(0, 1, 1)));
    assert_eq!(d.nvme().unwrap().stats().invalid_doorbells, 3);
    // Each also reached the backend as the model's own error, typed.
    let bad = |qid, completion, value, queue_size| NvmeError::InvalidDoorbell {
        write: DoorbellWrite {
            qid,
            completion,
            value,
        },
        queue_size,
    };
    assert_eq!(
        d.harness().take_device_errors(),
        [
            bad(9, false, 1, None),
            bad(1, false, 100, Some(16)),
            bad(1, true, 100, Some(16)),
        ]
    );
    // The queues still work.
    d.write_blocks(1, 0, &[7u8; 512], 512, PrpLayout::default())
        .unwrap();
}

#[test]
fn malformed_commands_get_their_status() {
    let (mut d, mem) = setup();
    let blocks = SIZE / 512;
    let t = d.prepare(8192, PrpLayout::default()).unwrap();
    let rw = |op: u8, slba: u64, nlb: u32| Driver::rw_command(op, slba, nlb, &t);
    let unmapped = d.harness().dma_alloc(4096).unwrap();
    d.harness().dma_free(unmapped);
    let cases = [
        (cmd(0x7F, 1, [0; 6]), Status::INVALID_OPCODE),
        (cmd(0xFF, 0, [0; 6]), Status::INVALID_OPCODE),
        (
            Command {
                nsid: 0,
                ..rw(nvm::READ, 0, 1)
            },
            Status::INVALID_NAMESPACE,
        ),
        (
            Command {
                nsid: 2,
                ..rw(nvm::WRITE, 0, 1)
            },
            Status::INVALID_NAMESPACE,
        ),
        (
            Command {
                nsid: 0xFFFF_FFFF,
                ..rw(nvm::READ, 0, 1)
            },
            Status::INVALID_NAMESPACE,
        ),
        (rw(nvm::READ, blocks - 1, 2), Status::LBA_OUT_OF_RANGE),
        (rw(nvm::WRITE, blocks, 1), Status::LBA_OUT_OF_RANGE),
        (rw(nvm::WRITE, u64::MAX, 1), Status::LBA_OUT_OF_RANGE),
        (
            cmd(nvm::WRITE_ZEROES, 1, [blocks as u32, 0, 0, 0, 0, 0]),
            Status::LBA_OUT_OF_RANGE,
        ),
        (rw(nvm::READ, 0, 65536), Status::INVALID_FIELD), // 32 MiB > MDTS
        (
            Command {
                cdw: [0, 0, 1 << 26, 0, 0, 0],
                ..rw(nvm::READ, 0, 1)
            },
            Status::INVALID_FIELD, // protection information
        ),
        (
            Command {
                fuse: 1,
                ..rw(nvm::READ, 0, 1)
            },
            Status::INVALID_FIELD,
        ),
        (
            Command {
                psdt: 1,
                ..rw(nvm::READ, 0, 1)
            },
            Status::INVALID_FIELD,
        ),
        (
            Command {
                prp1: t.prp.0 + 2,
                ..rw(nvm::READ, 0, 1)
            },
            Status::PRP_OFFSET_INVALID,
        ),
        (
            Command {
                prp1: t.prp.0 + 512,
                prp2: t.prp.0 + 4096 + 16,
                ..rw(nvm::READ, 0, 8)
            },
            Status::PRP_OFFSET_INVALID,
        ),
        (
            Command {
                prp1: unmapped,
                ..rw(nvm::READ, 0, 1)
            },
            Status::DATA_TRANSFER_ERROR,
        ),
        (
            Command {
                prp1: unmapped,
                ..rw(nvm::WRITE, 0, 1)
            },
            Status::DATA_TRANSFER_ERROR,
        ),
        (cmd(nvm::FLUSH, 3, [0; 6]), Status::INVALID_NAMESPACE),
        (
            cmd(nvm::DATASET_MANAGEMENT, 2, [0; 6]),
            Status::INVALID_NAMESPACE,
        ),
        (
            Command {
                fuse: 2,
                ..cmd(admin::KEEP_ALIVE, 0, [0; 6])
            },
            Status::INVALID_FIELD,
        ),
    ];
    for (c, want) in cases {
        let qid = if c.opcode == admin::KEEP_ALIVE { 0 } else { 1 };
        let r = d.run(qid, c).unwrap();
        assert_eq!(r.status, want, "{c:?}");
        assert!(r.dnr(), "errors set Do Not Retry");
    }
    // None of them wrote anything.
    assert!(mem.snapshot(0, SIZE).iter().all(|&b| b == 0));
    // A PRP list entry that is not page aligned (caught by the walk).
    let big = d.prepare(3 * 4096, PrpLayout::default()).unwrap();
    let list = big.prp.1;
    d.harness()
        .dma_write(list + 8, &(unmapped + 4).to_le_bytes())
        .unwrap();
    let c = Driver::rw_command(nvm::WRITE, 0, 24, &big);
    assert_eq!(status(&mut d, 1, c), Status::PRP_OFFSET_INVALID);
    assert!(mem.snapshot(0, SIZE).iter().all(|&b| b == 0));
    let errors = d.nvme().unwrap().stats().errors;
    assert_eq!(errors, 21);
}

#[test]
fn read_write_flush_zeroes_and_deallocate() {
    for lba in [LbaSize::B512, LbaSize::B4096] {
        let (mut d, mem) = setup_with(lba);
        let lbs = lba.bytes() as usize;
        let data: Vec<u8> = (0..16u64).flat_map(|i| pattern(100 + i, lbs, 3)).collect();
        d.write_blocks(1, 100, &data, lbs, PrpLayout::default())
            .unwrap();
        assert_eq!(mem.snapshot(100 * lbs as u64, data.len() as u64), data);
        assert_eq!(
            d.read_blocks(2, 100, 16, lbs, PrpLayout::default())
                .unwrap(),
            data
        );
        // Unaligned data buffer (dword offset in its first page).
        let layout = PrpLayout {
            data_offset: 1500 & !3,
            ..PrpLayout::default()
        };
        assert_eq!(d.read_blocks(1, 100, 16, lbs, layout).unwrap(), data);
        // Flush, with NSID 1 and the broadcast NSID.
        let before = mem.flushes();
        d.run_ok(1, "Flush", cmd(nvm::FLUSH, 1, [0; 6])).unwrap();
        d.run_ok(1, "Flush", cmd(nvm::FLUSH, 0xFFFF_FFFF, [0; 6]))
            .unwrap();
        assert_eq!(mem.flushes(), before + 2);
        // Write Zeroes of blocks 102..104.
        d.run_ok(
            1,
            "Write Zeroes",
            cmd(nvm::WRITE_ZEROES, 1, [102, 0, 1, 0, 0, 0]),
        )
        .unwrap();
        let back = d
            .read_blocks(1, 100, 16, lbs, PrpLayout::default())
            .unwrap();
        assert!(back[2 * lbs..4 * lbs].iter().all(|&b| b == 0));
        assert_eq!(back[..2 * lbs], data[..2 * lbs]);
        assert_eq!(back[4 * lbs..], data[4 * lbs..]);
        // Dataset Management: deallocate blocks 110..112 and 114.
        let mut ranges = Vec::new();
        for (slba, nlb) in [(110u64, 2u32), (114, 1)] {
            ranges.extend_from_slice(&0u32.to_le_bytes());
            ranges.extend_from_slice(&nlb.to_le_bytes());
            ranges.extend_from_slice(&slba.to_le_bytes());
        }
        let t = d.prepare(ranges.len(), PrpLayout::default()).unwrap();
        d.harness().dma_write(t.data, &ranges).unwrap();
        let dsm = Command {
            prp1: t.prp.0,
            ..cmd(nvm::DATASET_MANAGEMENT, 1, [1, 1 << 2, 0, 0, 0, 0])
        };
        d.run_ok(1, "DSM", dsm).unwrap();
        let back = d
            .read_blocks(1, 100, 16, lbs, PrpLayout::default())
            .unwrap();
        for (i, block) in back.chunks_exact(lbs).enumerate() {
            let zero = matches!(i, 2 | 3 | 10 | 11 | 14);
            assert_eq!(block.iter().all(|&b| b == 0), zero, "block {i}");
        }
        // A range past the end: nothing is deallocated.
        let blocks = SIZE / lbs as u64;
        let mut bad = ranges.clone();
        bad[24..32].copy_from_slice(&(blocks - 1).to_le_bytes());
        bad[20..24].copy_from_slice(&2u32.to_le_bytes());
        d.harness().dma_write(t.data, &bad).unwrap();
        d.write_blocks(1, 110, &data[..2 * lbs], lbs, PrpLayout::default())
            .unwrap();
        assert_eq!(status(&mut d, 1, dsm), Status::LBA_OUT_OF_RANGE);
        assert_eq!(
            mem.snapshot(110 * lbs as u64, 2 * lbs as u64),
            data[..2 * lbs]
        );
        // Hints only (no deallocate): success, nothing changes.
        let hint = Command {
            cdw: [1, 0b11, 0, 0, 0, 0],
            ..dsm
        };
        d.harness().dma_write(t.data, &ranges).unwrap();
        d.run_ok(1, "DSM hints", hint).unwrap();
        assert_eq!(
            mem.snapshot(110 * lbs as u64, 2 * lbs as u64),
            data[..2 * lbs]
        );
        // FUA, and writes without the volatile cache, are flushed.
        let before = mem.flushes();
        let t = d.prepare(lbs, PrpLayout::default()).unwrap();
        let mut fua = Driver::rw_command(nvm::WRITE, 5, 1, &t);
        fua.cdw[2] |= 1 << 30;
        d.run_ok(1, "FUA write", fua).unwrap();
        assert_eq!(mem.flushes(), before + 1);
        d.run_ok(
            0,
            "VWC off",
            cmd(admin::SET_FEATURES, 0, [0x06, 0, 0, 0, 0, 0]),
        )
        .unwrap();
        d.write_blocks(1, 6, &data[..lbs], lbs, PrpLayout::default())
            .unwrap();
        assert_eq!(mem.flushes(), before + 2);
    }
}

#[test]
fn prp_lists_crossing_list_pages() {
    let (mut d, mem) = setup();
    // 3 MiB: 768 pages, a PRP list of 767 entries over two list pages.
    let len = 3 << 20;
    let data: Vec<u8> = (0..(len / 512) as u64)
        .flat_map(|i| pattern(i, 512, 9))
        .collect();
    d.write_blocks(1, 0, &data, 512, PrpLayout::default())
        .unwrap();
    assert_eq!(mem.snapshot(0, len as u64), data);
    // Read back through a list that starts 16 bytes before its page end
    // (one entry, then a chain pointer), with the data at an offset.
    let layout = PrpLayout {
        data_offset: 256,
        list_offset: 4096 - 16,
    };
    assert_eq!(
        d.read_blocks(2, 0, (len / 512) as u32, 512, layout)
            .unwrap(),
        data
    );
    let small = d.read_blocks(1, 8, 40, 512, layout).unwrap();
    assert_eq!(small, data[8 * 512..48 * 512]);
    // The largest transfer MDTS allows: 16 MiB in one command.
    let whole = d
        .read_blocks(1, 0, 32768, 512, PrpLayout::default())
        .unwrap();
    assert_eq!(whole[..len], data[..]);
    assert!(whole[len..].iter().all(|&b| b == 0));
}

#[test]
fn queues_wrap_around_and_back_pressure() {
    let mem = MemStorage::new(SIZE);
    let nvme = Nvme::new(config(LbaSize::B512), Box::new(mem.clone())).unwrap();
    let mut d = Driver::new(nvme, true).unwrap();
    d.setup_interrupts(IrqSetup::MsiX).unwrap();
    d.enable(2).unwrap(); // the smallest admin queue: wraps every command
    d.run_ok(
        0,
        "Set Features",
        cmd(admin::SET_FEATURES, 0, [0x07, 0x0001_0001, 0, 0, 0, 0]),
    )
    .unwrap();
    d.create_io_queue_sized(1, 4, 4, 1).unwrap();
    // A CQ of 3 entries holds 2 completions; its SQ has 8 slots.
    d.create_io_queue_sized(2, 8, 3, 2).unwrap();
    for i in 0..25u64 {
        let b = pattern(i, 512, 4);
        d.write_blocks(1, i, &b, 512, PrpLayout::default()).unwrap();
        assert_eq!(
            d.read_blocks(1, i, 1, 512, PrpLayout::default()).unwrap(),
            b
        );
        d.identify(0x01, 0).unwrap();
    }
    // 7 writes at once on queue 2: the controller stops at a full CQ and
    // resumes as the driver consumes completions.
    let ts: Vec<_> = (0..7)
        .map(|_| d.prepare(512, PrpLayout::default()).unwrap())
        .collect();
    let cmds: Vec<Command> = ts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            d.harness()
                .dma_write(t.data, &pattern(100 + i as u64, 512, 5))
                .unwrap();
            Command {
                cid: 1000 + i as u16,
                ..Driver::rw_command(nvm::WRITE, 100 + i as u64, 1, t)
            }
        })
        .collect();
    d.submit(2, &cmds).unwrap();
    d.harness().step().unwrap();
    assert!(
        mem.snapshot(102 * 512, 512).iter().all(|&b| b == 0),
        "third write waits for room"
    );
    let mut seen = Vec::new();
    for _ in 0..7 {
        let c = d.reap(2).unwrap();
        assert!(c.status.is_success());
        seen.push(c.cid);
    }
    assert_eq!(seen, (1000..1007).collect::<Vec<_>>());
    for i in 0..7u64 {
        assert_eq!(mem.snapshot((100 + i) * 512, 512), pattern(100 + i, 512, 5));
    }
    assert_eq!(d.nvme().unwrap().stats().errors, 0);
}

#[test]
fn several_queues_at_once_each_on_its_vector() {
    let mem = MemStorage::new(SIZE);
    let nvme = Nvme::new(config(LbaSize::B512), Box::new(mem.clone())).unwrap();
    let mut d = Driver::new(nvme, true).unwrap();
    d.bring_up(IrqSetup::MsiX, 8, 32).unwrap();
    d.harness().take_irqs();
    let mut batch = Vec::new();
    for q in 1..=8u16 {
        let mut cmds = Vec::new();
        for k in 0..10u64 {
            let slba = u64::from(q) * 1000 + k * 8;
            let t = d.prepare(4096, PrpLayout::default()).unwrap();
            let data: Vec<u8> = (0..8).flat_map(|i| pattern(slba + i, 512, 6)).collect();
            d.harness().dma_write(t.data, &data).unwrap();
            cmds.push(Command {
                cid: q * 100 + k as u16,
                ..Driver::rw_command(nvm::WRITE, slba, 8, &t)
            });
            batch.push((slba, data, t));
        }
        d.queue_commands(q, &cmds).unwrap();
    }
    // Every doorbell rung before any completion is reaped.
    for q in 1..=8 {
        d.ring_sq(q).unwrap();
    }
    d.harness().step().unwrap();
    let irqs = d.harness().take_irqs();
    for q in 1..=8u32 {
        assert!(
            irqs.iter()
                .any(|i| i.kind == IrqKind::MsiX && i.vector == q && i.data == q),
            "vector {q} raised: {irqs:?}"
        );
    }
    for q in 1..=8 {
        for _ in 0..10 {
            let c = d.reap(q).unwrap();
            assert!(c.status.is_success() && c.cid / 100 == q);
        }
    }
    for (slba, data, t) in batch {
        assert_eq!(mem.snapshot(slba * 512, 4096), data);
        d.release(t);
    }
}

#[test]
fn msi_and_intx_fallbacks() {
    for how in [IrqSetup::Msi, IrqSetup::Intx] {
        let nvme = Nvme::new(config(LbaSize::B512), Box::new(MemStorage::new(SIZE))).unwrap();
        let mut d = Driver::new(nvme, true).unwrap();
        d.bring_up(how, 2, 8).unwrap();
        d.harness().take_irqs();
        d.write_blocks(2, 0, &[1u8; 512], 512, PrpLayout::default())
            .unwrap();
        let irqs = d.harness().take_irqs();
        match how {
            IrqSetup::Msi => assert!(irqs.iter().any(|i| i.kind == IrqKind::Msi && i.vector == 2)),
            _ => {
                assert!(irqs.iter().any(|i| i.kind == IrqKind::Intx), "{irqs:?}");
                // Every completion consumed: the line is down again.
                let status = d.harness().config_read(0x06, 2).unwrap();
                assert_eq!(status & 0x8, 0, "INTx deasserted");
            }
        }
        // INTMS holds the interrupt, INTMC releases it.
        d.harness().write32(0, INTMS, 1 << 2 | 1).unwrap();
        assert_eq!(d.harness().read32(0, INTMS).unwrap(), 0b101);
        let t = d.prepare(512, PrpLayout::default()).unwrap();
        let c = Driver::rw_command(nvm::READ, 0, 1, &t);
        let cid = d.cid();
        d.submit(2, &[Command { cid, ..c }]).unwrap();
        d.harness().step().unwrap();
        assert!(d.harness().take_irqs().is_empty(), "masked");
        d.harness().write32(0, INTMC, 0b101).unwrap();
        d.harness().step().unwrap();
        assert_eq!(d.harness().take_irqs().len(), 1, "released by INTMC");
        assert_eq!(d.reap(2).unwrap().cid, cid);
    }
}

#[test]
fn reset_in_the_middle_of_io_drops_the_queues() {
    let (mut d, mem) = setup();
    d.write_blocks(1, 0, &[0xAB; 512], 512, PrpLayout::default())
        .unwrap();
    // Pair 2 again, with a CQ that holds 3 completions and an SQ of 16:
    // of 10 writes, 3 run and 7 wait for room when the reset comes.
    d.delete_io_queue(2).unwrap();
    d.create_io_queue_sized(2, 16, 4, 2).unwrap();
    let t = d.prepare(512, PrpLayout::default()).unwrap();
    d.harness().dma_write(t.data, &[0xCD; 512]).unwrap();
    let cmds: Vec<Command> = (0..10u16)
        .map(|i| Command {
            cid: 500 + i,
            ..Driver::rw_command(nvm::WRITE, 10 + u64::from(i), 1, &t)
        })
        .collect();
    d.submit(2, &cmds).unwrap();
    d.harness().step().unwrap();
    assert_eq!(d.nvme().unwrap().stats().errors, 0);
    d.harness().write32(0, CC, 0).unwrap();
    assert_eq!(d.csts().unwrap() & CSTS_RDY, 0);
    let nvme = d.nvme().unwrap();
    assert_eq!(nvme.io_queues(), (vec![], vec![]));
    assert_eq!(nvme.stats().resets, 1);
    // Doorbells of the old queues are ignored while disabled.
    d.harness().write32(0, sq_tail_doorbell(2), 3).unwrap();
    d.harness().step().unwrap();
    // The controller comes back; data that completed before is there,
    // commands that were still waiting never ran.
    d.enable(16).unwrap();
    d.create_io_queues(2, 16).unwrap();
    assert_eq!(
        d.read_blocks(1, 0, 1, 512, PrpLayout::default()).unwrap(),
        vec![0xAB; 512]
    );
    for i in 0..10u64 {
        let block = mem.snapshot((10 + i) * 512, 512);
        if i < 3 {
            assert_eq!(
                block,
                vec![0xCD; 512],
                "write {i} completed before the reset"
            );
        } else {
            assert!(block.iter().all(|&b| b == 0), "write {i} was dropped");
        }
    }
    assert_eq!(d.nvme().unwrap().outstanding_event_requests(), 0);
    assert_eq!(d.nvme().unwrap().stats().invalid_doorbells, 0);
}

#[test]
fn shutdown_flushes_and_reports_complete() {
    let (mut d, mem) = setup();
    d.write_blocks(1, 0, &[5; 4096], 512, PrpLayout::default())
        .unwrap();
    let before = mem.flushes();
    d.shutdown().unwrap();
    let csts = d.csts().unwrap();
    assert_eq!(csts & CSTS_SHST_MASK, CSTS_SHST_COMPLETE);
    assert_eq!(mem.flushes(), before + 1);
    assert_eq!(d.nvme().unwrap().stats().shutdowns, 1);
    // Disabling after shutdown resets SHST.
    d.disable().unwrap();
    assert_eq!(d.csts().unwrap(), 0);
}

#[test]
fn unusable_enable_parameters_are_fatal() {
    for (asq_offset, cc_extra, aqa) in [
        (8u64, 0u32, 0x000F_000F), // ASQ not page aligned
        (0, 1 << 7, 0x000F_000F),  // MPS 8 KiB: not supported
        (0, 1 << 4, 0x000F_000F),  // CSS not NVM
        (0, 0, 0x0000_000F),       // ACQ of one entry
    ] {
        let nvme = Nvme::new(config(LbaSize::B512), Box::new(MemStorage::new(SIZE))).unwrap();
        let mut d = Driver::new(nvme, true).unwrap();
        d.harness().enable_bus_master().unwrap();
        let q = d.harness().dma_alloc(8192).unwrap();
        d.harness().write32(0, AQA, aqa).unwrap();
        d.harness()
            .write32(0, ASQ, (q + asq_offset) as u32)
            .unwrap();
        d.harness().write32(0, ASQ + 4, (q >> 32) as u32).unwrap();
        d.harness().write32(0, ACQ, (q + 4096) as u32).unwrap();
        d.harness().write32(0, ACQ + 4, (q >> 32) as u32).unwrap();
        d.harness()
            .write32(0, CC, 6 << 16 | 4 << 20 | cc_extra | CC_EN)
            .unwrap();
        assert_eq!(d.csts().unwrap() & (CSTS_RDY | CSTS_CFS), CSTS_CFS);
        // Registers read back; CAP and VS are read-only.
        d.harness().write32(0, CAP, 0).unwrap();
        let cap = d.harness().read32(0, CAP).unwrap();
        assert_eq!(u64::from(cap), capabilities() & 0xFFFF_FFFF);
        assert_eq!(d.harness().read32(0, VS).unwrap(), VERSION);
        // Clearing EN clears CFS.
        d.harness().write32(0, CC, 0).unwrap();
        assert_eq!(d.csts().unwrap(), 0);
    }
}

#[test]
fn threaded_device_serves_the_same_driver() {
    let mem = MemStorage::new(SIZE);
    let nvme = Nvme::new(config(LbaSize::B4096), Box::new(mem.clone())).unwrap();
    let mut d = Driver::new(nvme, false).unwrap();
    d.bring_up(IrqSetup::MsiX, 4, 64).unwrap();
    for q in 1..=4u16 {
        let data: Vec<u8> = (0..32)
            .flat_map(|i| pattern(u64::from(q) * 64 + i, 4096, 8))
            .collect();
        d.write_blocks(q, u64::from(q) * 64, &data, 4096, PrpLayout::default())
            .unwrap();
        assert_eq!(
            d.read_blocks(q, u64::from(q) * 64, 32, 4096, PrpLayout::default())
                .unwrap(),
            data
        );
    }
    d.shutdown().unwrap();
    let nvme = d.into_nvme().unwrap();
    assert_eq!(nvme.stats().errors, 0);
    assert_eq!(nvme.stats().shutdowns, 1);
}

#[test]
fn file_backend_punches_holes_and_survives_a_restart() {
    use std::os::unix::fs::MetadataExt;
    let dir = std::env::temp_dir().join(format!("pciem-nvme-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("disk.img");
    let _ = std::fs::remove_file(&path);
    let size = 16 << 20;
    let cfg = NvmeConfig {
        size,
        ..config(LbaSize::B4096)
    };
    let data: Vec<u8> = (0..256u64).flat_map(|i| pattern(i, 4096, 11)).collect();
    {
        let store = pciem_nvme::FileStorage::open(&path, size).unwrap();
        let nvme = Nvme::new(cfg.clone(), Box::new(store)).unwrap();
        let mut d = Driver::new(nvme, true).unwrap();
        d.bring_up(IrqSetup::MsiX, 1, 16).unwrap();
        d.write_blocks(1, 0, &data, 4096, PrpLayout::default())
            .unwrap();
        d.run_ok(1, "Flush", cmd(nvm::FLUSH, 1, [0; 6])).unwrap();
        let used = std::fs::metadata(&path).unwrap().blocks();
        // Deallocate blocks 128..256 (512 KiB).
        let mut range = Vec::new();
        range.extend_from_slice(&0u32.to_le_bytes());
        range.extend_from_slice(&128u32.to_le_bytes());
        range.extend_from_slice(&128u64.to_le_bytes());
        let t = d.prepare(16, PrpLayout::default()).unwrap();
        d.harness().dma_write(t.data, &range).unwrap();
        let dsm = Command {
            prp1: t.prp.0,
            ..cmd(nvm::DATASET_MANAGEMENT, 1, [0, 1 << 2, 0, 0, 0, 0])
        };
        d.run_ok(1, "DSM", dsm).unwrap();
        let after = std::fs::metadata(&path).unwrap().blocks();
        assert!(
            after + 512 * 1024 / 512 <= used,
            "hole punched: {used} -> {after} blocks"
        );
        d.shutdown().unwrap();
    }
    // A new controller on the same file sees what the first one left.
    let store = pciem_nvme::FileStorage::open(&path, size).unwrap();
    let nvme = Nvme::new(cfg, Box::new(store)).unwrap();
    let mut d = Driver::new(nvme, true).unwrap();
    d.bring_up(IrqSetup::MsiX, 1, 16).unwrap();
    let back = d
        .read_blocks(1, 0, 256, 4096, PrpLayout::default())
        .unwrap();
    assert_eq!(back[..128 * 4096], data[..128 * 4096]);
    assert!(back[128 * 4096..].iter().all(|&b| b == 0));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_poisoned_write_fails_once_with_data_transfer_error() {
    let mem = MemStorage::new(SIZE);
    let mut nvme = Nvme::new(config(LbaSize::B512), Box::new(mem.clone())).unwrap();
    nvme.poison_next_write_at(8);
    let mut d = Driver::new(nvme, true).unwrap();
    d.bring_up(IrqSetup::MsiX, 1, 16).unwrap();
    let data = pattern(8, 4096, 7);
    // Another LBA is not affected.
    d.write_blocks(1, 0, &data, 512, PrpLayout::default())
        .unwrap();
    let t = d.prepare(4096, PrpLayout::default()).unwrap();
    d.harness().dma_write(t.data, &data).unwrap();
    let c = d.run(1, Driver::rw_command(nvm::WRITE, 8, 8, &t)).unwrap();
    assert_eq!(c.status, Status::DATA_TRANSFER_ERROR);
    // The rule had count 1: it is gone, and the same write succeeds.
    assert!(d.harness().host().fault_rules().is_empty());
    let c = d.run(1, Driver::rw_command(nvm::WRITE, 8, 8, &t)).unwrap();
    assert!(c.status.is_success(), "{:?}", c.status);
    d.release(t);
    assert_eq!(
        d.read_blocks(1, 8, 8, 512, PrpLayout::default()).unwrap(),
        data
    );
}

#[test]
fn the_vendor_hotplug_command_removes_and_reinserts_the_controller() {
    let (mut d, _mem) = setup();
    let c = d
        .run(0, cmd(admin::PCIEM_HOTPLUG, 0, [10, 20, 0, 0, 0, 0]))
        .unwrap();
    assert!(c.status.is_success(), "{:?}", c.status);
    assert_eq!(d.csts().unwrap() & 1, 1, "still ready until the timer");
    d.harness()
        .advance(std::time::Duration::from_millis(10))
        .unwrap();
    assert!(d.harness().host().is_removed());
    assert_eq!(
        d.csts().unwrap(),
        u32::MAX,
        "a removed controller reads all-ones"
    );
    d.harness()
        .advance(std::time::Duration::from_millis(20))
        .unwrap();
    assert!(!d.harness().host().is_removed());
    d.harness().step().unwrap();
    // Power-on: not ready, a new bring-up works.
    assert_eq!(d.csts().unwrap() & 1, 0);
    d.bring_up(IrqSetup::MsiX, 1, 16).unwrap();
    let data = pattern(0, 4096, 3);
    d.write_blocks(1, 0, &data, 512, PrpLayout::default())
        .unwrap();
    assert_eq!(
        d.read_blocks(1, 0, 8, 512, PrpLayout::default()).unwrap(),
        data
    );
}
