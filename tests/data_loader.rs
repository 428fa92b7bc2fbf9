//! Shards, epochs, resumption, evaluation batches and uniform samples.

use std::collections::HashSet;
use std::sync::Arc;

use grawa_train::data::loader::epoch_order;
use grawa_train::data::{
    eval_batches, sample_batch, Augment, Batch, DataError, Dataset, ImageShape, Normalization,
    ShardLoader,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// `n` images of shape 1x1x2 whose bytes spell their own index (low byte, high byte); label i % 10.
fn indexed(n: usize) -> Dataset {
    let images = (0..n)
        .flat_map(|i| [(i % 256) as u8, (i / 256) as u8])
        .collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset::new(images, labels, ImageShape::new(1, 1, 2), 10).unwrap()
}

/// The indices a batch of `indexed` images holds (identity normalisation: value = byte / 255).
fn decode(b: &Batch) -> Vec<usize> {
    b.images
        .chunks_exact(2)
        .map(|px| (px[0] * 255.0).round() as usize + 256 * (px[1] * 255.0).round() as usize)
        .collect()
}

fn loader(ds: &Arc<Dataset>, bs: usize, worker: usize, workers: usize, seed: u64) -> ShardLoader {
    ShardLoader::new(
        ds.clone(),
        Normalization::identity(),
        Augment::none(),
        bs,
        worker,
        workers,
        seed,
    )
}

#[test]
fn shards_are_disjoint_and_cover_the_set_each_epoch() {
    let n = 1003;
    let ds = Arc::new(indexed(n));
    for workers in 1..=5 {
        let mut loaders: Vec<ShardLoader> = (0..workers)
            .map(|w| loader(&ds, 7, w, workers, 42))
            .collect();
        let s = n / workers;
        for epoch in 0..2 {
            let order = epoch_order(n, 42, epoch);
            let mut all = HashSet::new();
            for (w, l) in loaders.iter_mut().enumerate() {
                assert_eq!((l.shard_len(), l.batches_per_epoch()), (s, s / 7));
                assert_eq!(l.position(), (epoch, 0));
                // The shard is this worker's slice of the common epoch order.
                let shard: Vec<usize> = l.shard_indices().iter().map(|&i| i as usize).collect();
                let slice: Vec<usize> = order[w * s..(w + 1) * s]
                    .iter()
                    .map(|&i| i as usize)
                    .collect();
                assert_eq!(shard, slice);
                let mut read = Vec::new();
                for _ in 0..l.batches_per_epoch() {
                    let b = l.next_batch();
                    assert_eq!(b.len(), 7);
                    let ids = decode(&b);
                    let labels: Vec<u32> = ids.iter().map(|&i| (i % 10) as u32).collect();
                    assert_eq!(b.labels, labels);
                    read.extend(ids);
                }
                // Batches read the shard in order (drop last: the tail of s % 7 is skipped).
                assert_eq!(read, shard[..read.len()]);
                assert_eq!((l.epoch(), l.position()), (epoch + 1, (epoch + 1, 0)));
                for &i in &shard {
                    assert!(all.insert(i), "index {i} in two shards ({workers} workers)");
                }
            }
            // Together the shards cover all but n % workers indices.
            assert_eq!(all.len(), n - n % workers);
            assert!(all.iter().all(|&i| i < n));
        }
    }
}

#[test]
fn orders_are_reproducible_and_change_with_epoch_and_seed() {
    let ds = Arc::new(indexed(500));
    let run = |seed| {
        let mut l = loader(&ds, 10, 1, 3, seed);
        (0..40).map(|_| decode(&l.next_batch())).collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
    assert_eq!(epoch_order(500, 5, 3), epoch_order(500, 5, 3));
    assert_ne!(epoch_order(500, 5, 0), epoch_order(500, 5, 1));
    let mut sorted = epoch_order(500, 5, 1);
    sorted.sort_unstable();
    assert_eq!(sorted, (0..500).collect::<Vec<u32>>());
    // Consecutive epochs of one loader read different orders.
    let mut l = loader(&ds, 10, 0, 1, 5);
    let e0: Vec<usize> = (0..50).flat_map(|_| decode(&l.next_batch())).collect();
    let e1: Vec<usize> = (0..50).flat_map(|_| decode(&l.next_batch())).collect();
    assert_ne!(e0, e1);
    assert_eq!(
        e0.iter().collect::<HashSet<_>>(),
        e1.iter().collect::<HashSet<_>>()
    );
}

#[test]
fn seek_reproduces_the_following_batches_with_augmentation() {
    // CIFAR-like images and augmentation: the crops and flips must be reproduced too.
    let shape = ImageShape::new(3, 8, 8);
    let n = 100;
    let images = (0..n * shape.len()).map(|i| (i * 31 % 251) as u8).collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    let ds = Arc::new(Dataset::new(images, labels, shape, 10).unwrap());
    let aug = Augment {
        crop_padding: 2,
        hflip: true,
    };
    let norm = Normalization::for_kind(grawa_train::data::DatasetKind::Cifar10);
    let make = || ShardLoader::new(ds.clone(), norm.clone(), aug, 8, 1, 2, 9);

    let mut a = make();
    // 50-sample shard, 6 batches per epoch: 10 batches cross an epoch boundary.
    for _ in 0..4 {
        a.next_batch();
    }
    let pos = a.position();
    assert_eq!(pos, (0, 32));
    let following: Vec<Batch> = (0..10).map(|_| a.next_batch()).collect();

    let mut b = make();
    b.seek(pos.0, pos.1);
    assert_eq!(b.position(), pos);
    for (i, want) in following.iter().enumerate() {
        assert_eq!(&b.next_batch(), want, "batch {i} after seek");
    }
    // Seeking into a later epoch directly (no batches read before) works the same.
    let mut c = make();
    c.seek(1, 8);
    assert_eq!(&c.next_batch(), &following[3]);
    // An index past the last full batch means the next epoch's start.
    c.seek(0, 45);
    assert_eq!(c.position(), (1, 0));

    // Augmentation is on: some image of the epoch differs from its plain normalisation.
    let plain = Augment::none();
    let mut d = ShardLoader::new(ds.clone(), norm.clone(), plain, 8, 1, 2, 9);
    let un = d.next_batch();
    let au = make().next_batch();
    assert_eq!(un.labels, au.labels);
    assert_ne!(un.images, au.images);
}

#[test]
fn without_augmentation_a_batch_is_plain_normalisation() {
    let shape = ImageShape::new(3, 4, 4);
    let n = 30;
    let images: Vec<u8> = (0..n * shape.len()).map(|i| (i * 7 % 256) as u8).collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    let ds = Arc::new(Dataset::new(images, labels, shape, 10).unwrap());
    let norm = Normalization::for_kind(grawa_train::data::DatasetKind::Cifar10);
    let mut l = ShardLoader::new(ds.clone(), norm.clone(), Augment::none(), 5, 0, 1, 3);
    let ids: Vec<usize> = l.shard_indices()[..5].iter().map(|&i| i as usize).collect();
    let b = l.next_batch();
    assert_eq!(b.shape, shape);
    let want: Vec<f32> = ids
        .iter()
        .flat_map(|&i| {
            let img = ds.image(i);
            (0..shape.len()).map(move |j| (j / 16, img[j]))
        })
        .map(|(c, p)| norm.apply(c, p))
        .collect();
    assert_eq!(b.images, want);
}

#[test]
fn eval_batches_are_in_order_with_a_short_last_batch() {
    let ds = indexed(10);
    let id = Normalization::identity();
    let batches: Vec<Batch> = eval_batches(&ds, &id, 4).collect();
    let sizes: Vec<usize> = batches.iter().map(Batch::len).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    let ids: Vec<usize> = batches.iter().flat_map(decode).collect();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    assert_eq!(batches[2].labels, vec![8, 9]);
}

#[test]
fn sample_batch_draws_distinct_samples_reproducibly() {
    let ds = indexed(300);
    let id = Normalization::identity();
    let draw = |seed, n| sample_batch(&ds, &id, n, &mut StdRng::seed_from_u64(seed));
    let b = draw(1, 64);
    let ids = decode(&b);
    assert_eq!(ids.len(), 64);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 64);
    assert_eq!(
        b.labels,
        ids.iter().map(|&i| (i % 10) as u32).collect::<Vec<_>>()
    );
    assert_eq!(draw(1, 64), b);
    assert_ne!(draw(2, 64), b);
    // Asking for more than there is gives everything once.
    let all = decode(&draw(3, 1000));
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 300);
    // Uniform over the whole set: the mean index of many draws is near the middle.
    let mut rng = StdRng::seed_from_u64(4);
    let mean = (0..200)
        .flat_map(|_| decode(&sample_batch(&ds, &id, 10, &mut rng)))
        .sum::<usize>() as f64
        / 2000.0;
    assert!((139.0..160.0).contains(&mean), "{mean}");
}

#[test]
fn impossible_loader_parameters_are_errors() {
    let ds = Arc::new(indexed(20));
    let id = Normalization::identity;
    let try_new = |bs, w, m| ShardLoader::try_new(ds.clone(), id(), Augment::none(), bs, w, m, 0);
    assert!(matches!(try_new(4, 2, 2), Err(DataError::Invalid(_))));
    assert!(matches!(try_new(4, 0, 0), Err(DataError::Invalid(_))));
    assert!(matches!(try_new(0, 0, 1), Err(DataError::Invalid(_))));
    // 20 samples / 3 workers = 6 per shard: batch 6 fits, batch 7 does not.
    assert!(try_new(6, 2, 3).is_ok());
    let e = try_new(7, 0, 3).unwrap_err().to_string();
    assert!(e.contains("batch size 7") && e.contains("= 6"), "{e}");
    let three = Normalization::for_kind(grawa_train::data::DatasetKind::Cifar10);
    let e = ShardLoader::try_new(ds.clone(), three, Augment::none(), 2, 0, 1, 0);
    assert!(matches!(e, Err(DataError::Invalid(_))));
}
