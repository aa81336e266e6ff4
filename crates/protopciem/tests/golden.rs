//! Golden-image checks of rendering: small scenes, every pixel known.

mod common;

use common::enabled_bus;
use protopciem::cmdbuf::CmdBufBuilder;
use protopciem::demo::Driver;
use protopciem::framebuffer::{Rgb, HEIGHT, STRIDE, WIDTH};

const BG: Rgb = Rgb::new(10, 20, 30);
const FG: Rgb = Rgb::new(250, 128, 5);

/// Render `buf` (after a CLEAR to BG) and return the frame read from BAR2.
fn render(buf: CmdBufBuilder) -> Vec<u8> {
    let mut bus = enabled_bus();
    let mut d = Driver::new(&mut bus);
    let bytes = CmdBufBuilder::new().clear(BG).raw(&buf.build()).build();
    d.submit(&bytes).unwrap();
    d.read_frame().unwrap()
}

fn at(f: &[u8], x: usize, y: usize) -> Rgb {
    let i = y * STRIDE + x * 3;
    Rgb::new(f[i], f[i + 1], f[i + 2])
}

/// Every pixel not BG, in row-major order.
fn drawn(f: &[u8]) -> Vec<(usize, usize, Rgb)> {
    let mut v = Vec::new();
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let c = at(f, x, y);
            if c != BG {
                v.push((x, y, c));
            }
        }
    }
    v
}

fn pts(f: &[u8]) -> Vec<(usize, usize)> {
    drawn(f).into_iter().map(|(x, y, _)| (x, y)).collect()
}

#[test]
fn clear_fills_every_pixel() {
    common::each_mode(|| {
        let f = render(CmdBufBuilder::new());
        assert!(drawn(&f).is_empty());
        assert_eq!(at(&f, 0, 0), BG);
        assert_eq!(at(&f, 639, 479), BG);
    });
}

#[test]
fn horizontal_vertical_and_diagonal_lines() {
    common::each_mode(|| {
        let f = render(CmdBufBuilder::new().line(3, 2, 7, 2, FG));
        assert_eq!(pts(&f), vec![(3, 2), (4, 2), (5, 2), (6, 2), (7, 2)]);
        assert!(drawn(&f).iter().all(|p| p.2 == FG));

        let f = render(CmdBufBuilder::new().line(9, 12, 9, 9, FG));
        assert_eq!(pts(&f), vec![(9, 9), (9, 10), (9, 11), (9, 12)]);

        let f = render(CmdBufBuilder::new().line(4, 0, 0, 4, FG));
        assert_eq!(pts(&f), vec![(4, 0), (3, 1), (2, 2), (1, 3), (0, 4)]);
    });
}

#[test]
fn steep_line_exact_pixels() {
    common::each_mode(|| {
        // x = y / 3 from (0,0) to (2,6): rows 0..=6, x = round(y / 3) with
        // halves (none here) stepping early.
        let f = render(CmdBufBuilder::new().line(0, 0, 2, 6, FG));
        assert_eq!(
            pts(&f),
            vec![(0, 0), (0, 1), (1, 2), (1, 3), (1, 4), (2, 5), (2, 6)]
        );
    });
}

#[test]
fn line_endpoints_at_the_screen_corners() {
    common::each_mode(|| {
        let f = render(CmdBufBuilder::new().line(639, 0, 0, 479, FG));
        let p = pts(&f);
        assert_eq!(p.len(), 640);
        assert!(p.contains(&(639, 0)) && p.contains(&(0, 479)));
    });
}

#[test]
fn line_partly_off_screen_is_clipped() {
    common::each_mode(|| {
        let f = render(CmdBufBuilder::new().line(636, 5, 645, 5, FG));
        assert_eq!(pts(&f), vec![(636, 5), (637, 5), (638, 5), (639, 5)]);
    });
}

#[test]
fn blit_copies_pixels_in_place() {
    common::each_mode(|| {
        let px: Vec<u8> = (1..=18).collect();
        let f = render(CmdBufBuilder::new().blit(20, 30, 3, 2, &px).unwrap());
        assert_eq!(
            drawn(&f),
            vec![
                (20, 30, Rgb::new(1, 2, 3)),
                (21, 30, Rgb::new(4, 5, 6)),
                (22, 30, Rgb::new(7, 8, 9)),
                (20, 31, Rgb::new(10, 11, 12)),
                (21, 31, Rgb::new(13, 14, 15)),
                (22, 31, Rgb::new(16, 17, 18)),
            ]
        );
    });
}

#[test]
fn blit_clipped_at_the_right_and_bottom_edges() {
    common::each_mode(|| {
        let px: Vec<u8> = (1..=18).collect();
        let f = render(CmdBufBuilder::new().blit(638, 479, 3, 2, &px).unwrap());
        assert_eq!(
            drawn(&f),
            vec![(638, 479, Rgb::new(1, 2, 3)), (639, 479, Rgb::new(4, 5, 6))]
        );
        let f = render(CmdBufBuilder::new().blit(640, 100, 3, 2, &px).unwrap());
        assert!(drawn(&f).is_empty());
    });
}

#[test]
fn later_records_draw_over_earlier_ones() {
    common::each_mode(|| {
        let px = [1, 1, 1, 2, 2, 2, 3, 3, 3];
        let f = render(
            CmdBufBuilder::new()
                .blit(0, 0, 3, 1, &px)
                .unwrap()
                .line(1, 0, 1, 1, FG),
        );
        assert_eq!(
            drawn(&f),
            vec![
                (0, 0, Rgb::new(1, 1, 1)),
                (1, 0, FG),
                (2, 0, Rgb::new(3, 3, 3)),
                (1, 1, FG),
            ]
        );
    });
}

#[test]
fn empty_blit_and_nop_draw_nothing() {
    common::each_mode(|| {
        let f = render(CmdBufBuilder::new().nop(40).blit(5, 5, 0, 9, &[]).unwrap());
        assert!(drawn(&f).is_empty());
    });
}
