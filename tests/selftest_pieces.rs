//! The layer-aligned pieces the layered CUDA kernels walk (`src/cuda/block_pieces.rs`). That
//! module is compiled only with the `cuda` feature, whose test binaries need libcuda to start, so
//! its pure code is included here by path and tested on the CPU of any build.

#[path = "../src/cuda/block_pieces.rs"]
#[allow(dead_code)]
mod pieces;

use pieces::Pieces;

/// The layers (offset, len) of consecutive layers with these lengths.
fn layers(lens: &[usize]) -> Vec<(usize, usize)> {
    let mut offset = 0;
    lens.iter()
        .map(|&len| {
            let e = (offset, len);
            offset += len;
            e
        })
        .collect()
}

#[test]
fn pieces_split_at_layer_boundaries_and_piece_size() {
    // Layers of 5, 0, 3 with pieces of 2: [0,2) [2,4) [4,5) | (none) | [5,7) [7,8).
    let p = Pieces::new(&layers(&[5, 0, 3]), 8, 2).unwrap();
    assert_eq!(p.start, [0, 2, 4, 5, 7, 8]);
    assert_eq!(p.layer, [0, 0, 0, 2, 2]);
    assert_eq!(p.first, [0, 3, 3, 5]);
    assert_eq!((p.count(), p.layers(), p.len()), (5, 3, 8));
}

#[test]
fn every_element_is_in_exactly_one_piece_of_its_own_layer() {
    let lens = [0, 1, 7, 4095, 4096, 4097, 10_000, 3, 0, 123_457, 31];
    let n: usize = lens.iter().sum();
    let table = layers(&lens);
    let p = Pieces::new(&table, n, pieces::PIECE).unwrap();
    assert_eq!(p.start[0], 0);
    assert_eq!(*p.start.last().unwrap(), n as u64);
    for k in 0..p.count() {
        let (a, b) = (p.start[k] as usize, p.start[k + 1] as usize);
        assert!(a < b && b - a <= pieces::PIECE, "piece {k}: {a}..{b}");
        let (off, len) = table[p.layer[k] as usize];
        assert!(off <= a && b <= off + len, "piece {k} leaves its layer");
    }
    for (l, &(off, len)) in table.iter().enumerate() {
        let (f, e) = (p.first[l] as usize, p.first[l + 1] as usize);
        assert!(p.layer[f..e].iter().all(|&x| x as usize == l));
        let covered: usize = (f..e).map(|k| (p.start[k + 1] - p.start[k]) as usize).sum();
        assert_eq!(covered, len, "layer {l}");
        if len > 0 {
            assert_eq!(p.start[f] as usize, off);
        }
        // ceil(len / PIECE) pieces: 4096 is one piece, 4097 two.
        assert_eq!(e - f, len.div_ceil(pieces::PIECE), "layer {l}");
    }
}

#[test]
fn empty_buffers_and_empty_tables() {
    let p = Pieces::new(&[], 0, 4).unwrap();
    assert_eq!((p.count(), p.layers(), p.len()), (0, 0, 0));
    assert_eq!(p.first, [0]);
    assert!(p.is_empty());

    let p = Pieces::new(&layers(&[0, 0]), 0, 4).unwrap();
    assert_eq!((p.count(), p.layers()), (0, 2));
    assert_eq!(p.first, [0, 0, 0]);
}

#[test]
fn flat_is_one_layer() {
    let p = Pieces::flat(10, 4).unwrap();
    assert_eq!(p.start, [0, 4, 8, 10]);
    assert_eq!(p.layer, [0, 0, 0]);
    assert_eq!(p.first, [0, 3]);
}

#[test]
fn tables_that_do_not_fit_the_buffer_are_refused() {
    let gap = Pieces::new(&[(0, 3), (4, 2)], 6, 4).unwrap_err();
    assert_eq!(
        gap,
        "pieces: layer 1 starts at 4 but the previous one ends at 3"
    );
    let short = Pieces::new(&[(0, 3)], 5, 4).unwrap_err();
    assert_eq!(
        short,
        "pieces: the layers cover 3 elements but the buffer has 5"
    );
    assert!(Pieces::new(&[(0, 3)], 3, 0).is_err());
}
