//! The worker's parameter store, both homes on the host: the flat store (the code a GPU worker
//! runs, over host buffers here) and the CPU's in-place tensor store give the same bits for every
//! step kind (a step from autograd, from a packed gradient, from a given one, SAM's ascent and
//! descent, the proximal pull, a round's pull and exchange, a checkpoint's load), and the
//! in-place store follows `optim::sgd_update` (which tests/optim.rs holds to PyTorch's rule).

use std::sync::Arc;

use candle_core::{Device, Tensor};
use grawa_train::buffer::Flat;
use grawa_train::data::ImageShape;
use grawa_train::model::{Model, ModelKind};
use grawa_train::optim::{flat_grads, sgd_update, SgdConfig};
use grawa_train::round::Target;
use grawa_train::train::worker::{FlatStore, Gradient, ParamStore, TensorStore};

const MNIST: ImageShape = ImageShape {
    channels: 1,
    height: 28,
    width: 28,
};

const CFG: SgdConfig = SgdConfig {
    momentum: 0.9,
    nesterov: true,
    weight_decay: 5e-4,
};

/// Two identical models, one in each store.
struct Pair {
    models: [Model; 2],
    stores: [Box<dyn ParamStore>; 2],
    x: Tensor,
    y: Tensor,
}

impl Pair {
    fn new(kind: ModelKind, seed: u64) -> Self {
        let a = Model::new(kind, MNIST, 10, seed, &Device::Cpu).unwrap();
        let b = Model::new(kind, MNIST, 10, seed, &Device::Cpu).unwrap();
        let flat: Box<dyn ParamStore> = Box::new(FlatStore::open(&a, CFG).unwrap());
        let tensors: Box<dyn ParamStore> = Box::new(TensorStore::new(&b.params, CFG));
        let x = Tensor::randn(0f32, 1.0, (8, 1, 28, 28), &Device::Cpu).unwrap();
        let y = Tensor::new(&[0u32, 1, 2, 3, 4, 5, 6, 7], &Device::Cpu).unwrap();
        Self {
            models: [a, b],
            stores: [flat, tensors],
            x,
            y,
        }
    }

    /// `f` on both (model, store) pairs, with the gradients of a backward pass at the model's
    /// tensors as they are.
    fn each(
        &mut self,
        mut f: impl FnMut(&Model, &mut dyn ParamStore, &candle_core::backprop::GradStore),
    ) {
        for (m, s) in self.models.iter().zip(self.stores.iter_mut()) {
            let logits = m.forward_t(&self.x, true).unwrap();
            let loss = candle_nn::loss::cross_entropy(&logits, &self.y).unwrap();
            f(m, s.as_mut(), &loss.backward().unwrap());
        }
    }

    /// Both models' tensors and both stores' saved states are the same bits.
    fn same(&self, what: &str) {
        let [a, b] = &self.models;
        assert_eq!(
            a.params.to_flat().unwrap(),
            b.params.to_flat().unwrap(),
            "{what}: tensors"
        );
        let [sa, sb] = &self.stores;
        assert_eq!(
            sa.save().unwrap(),
            sb.save().unwrap(),
            "{what}: parameters and momentum"
        );
        assert_eq!(
            sa.save().unwrap().0,
            a.params.to_flat().unwrap(),
            "{what}: in sync"
        );
    }
}

#[test]
fn both_homes_step_to_the_same_bits() {
    for kind in [ModelKind::Mlp, ModelKind::Cnn] {
        let mut p = Pair::new(kind, 11);
        let n = p.models[0].params.len();
        let mean = Flat::Host((0..n).map(|i| ((i % 13) as f32 - 6.0) * 1e-3).collect());
        let anchor = Flat::Host((0..n).map(|i| (i % 7) as f32 * 0.25).collect());
        for step in 0..2 {
            p.each(|_, s, g| {
                s.step(Gradient::Backward(g), 0.05).unwrap();
                s.sync().unwrap();
            });
            p.same(&format!("{kind}: a step from autograd, {step}"));
            p.each(|_, s, g| {
                s.pack(g).unwrap();
                s.step(Gradient::Packed, 0.05).unwrap();
                s.pull(&anchor, 0.01).unwrap();
                s.sync().unwrap();
            });
            p.same(&format!(
                "{kind}: a packed step and a proximal pull, {step}"
            ));
            // SAM: ascend along the packed gradient, a backward pass there, back, a given mean.
            p.each(|_, s, g| {
                let norm = s
                    .pack(g)
                    .unwrap()
                    .to_vec()
                    .unwrap()
                    .iter()
                    .map(|v| v * v)
                    .sum::<f32>();
                s.ascend(0.05 / norm.sqrt()).unwrap();
            });
            let [a, b] = &p.models;
            assert_eq!(
                a.params.to_flat().unwrap(),
                b.params.to_flat().unwrap(),
                "ascended"
            );
            assert_ne!(
                a.params.to_flat().unwrap(),
                p.stores[0].save().unwrap().0,
                "moved"
            );
            p.each(|_, s, g| {
                s.pack(g).unwrap();
                s.descend().unwrap();
                s.step(Gradient::Given(&mean), 0.1).unwrap();
                s.sync().unwrap();
            });
            p.same(&format!(
                "{kind}: SAM's ascent and a given gradient, {step}"
            ));
        }
    }
}

#[test]
fn targets_and_checkpoints_land_the_same_in_both_homes() {
    let mut p = Pair::new(ModelKind::Mlp, 3);
    let n = p.models[0].params.len();
    let c = Arc::new(Flat::Host((0..n).map(|i| (i % 5) as f32 * 0.5).collect()));
    let diff = Arc::new(Flat::Host(vec![0.125; n]));
    let x0 = p.models[0].params.to_flat().unwrap();
    let pull = Target::Pull {
        point: c.clone(),
        lambda: 0.5,
    };
    let exchange = Target::Exchange { worker: 2, diff };
    for s in p.stores.iter_mut() {
        let anchor = s
            .apply(&pull, 1)
            .unwrap()
            .expect("a pull's point is the next anchor");
        assert!(
            Arc::ptr_eq(&anchor, &c),
            "host memory: the same point, no copy"
        );
        assert!(
            s.apply(&exchange, 1).unwrap().is_none(),
            "not worker 1's exchange"
        );
        s.sync().unwrap();
    }
    p.same("a pull and another worker's exchange");
    let pulled: Vec<f32> = x0
        .iter()
        .zip(c.to_vec().unwrap())
        .map(|(x, c)| 0.5 * x + 0.5 * c)
        .collect();
    assert_eq!(
        p.stores[0].save().unwrap().0,
        pulled,
        "x <- (1 - lambda) x + lambda c"
    );
    for s in p.stores.iter_mut() {
        s.apply(&exchange, 2).unwrap();
        s.sync().unwrap();
    }
    p.same("its own exchange");
    let moved: Vec<f32> = pulled.iter().map(|v| v - 0.125).collect();
    assert_eq!(p.stores[1].save().unwrap().0, moved, "x <- x - diff");
    let momentum: Vec<f32> = (0..n).map(|i| i as f32 * 1e-4).collect();
    for s in p.stores.iter_mut() {
        s.load(x0.clone(), momentum.clone()).unwrap();
    }
    p.same("a checkpoint loaded");
    assert_eq!(p.stores[0].save().unwrap(), (x0, momentum));
}

/// The in-place store's step from autograd is `sgd_update` over the flat gradient.
#[test]
fn the_step_is_the_sgd_update() {
    let model = Model::new(ModelKind::Mlp, MNIST, 10, 5, &Device::Cpu).unwrap();
    let mut store = TensorStore::new(&model.params, CFG);
    let x = Tensor::randn(0f32, 1.0, (4, 1, 28, 28), &Device::Cpu).unwrap();
    let y = Tensor::new(&[1u32, 2, 3, 4], &Device::Cpu).unwrap();
    let mut want = model.params.to_flat().unwrap();
    let mut buf = vec![0f32; want.len()];
    for _ in 0..2 {
        let loss = candle_nn::loss::cross_entropy(&model.forward_t(&x, true).unwrap(), &y).unwrap();
        let grads = loss.backward().unwrap();
        let mut g = vec![0f32; want.len()];
        flat_grads(&model.params, &grads, &mut g).unwrap();
        sgd_update(&mut want, &g, &mut buf, 0.05, &CFG);
        store.step(Gradient::Backward(&grads), 0.05).unwrap();
    }
    assert_eq!(store.save().unwrap(), (want, buf));
}
