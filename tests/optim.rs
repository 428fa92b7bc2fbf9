//! The optimizer against hand-derived numbers, and the in-place model path against the slice math.

use candle_core::{Device, Tensor};
use grawa_train::data::ImageShape;
use grawa_train::model::{Model, ModelKind};
use grawa_train::optim::{sgd_update, Sgd, SgdConfig};

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-6 * (1.0 + b.abs())
}

/// Two steps worked by hand from PyTorch's update rule (torch.optim.SGD, dampening 0):
/// x = 1, g = 0.5 both steps, wd = 0.1, mu = 0.9, lr = 0.1.
///   Nesterov step 1: d = 0.5 + 0.1*1 = 0.6; buf = 0.6; d = 0.6 + 0.9*0.6 = 1.14; x = 1 - 0.114 = 0.886
///   Nesterov step 2: d = 0.5 + 0.0886 = 0.5886; buf = 0.54 + 0.5886 = 1.1286;
///                    d = 0.5886 + 1.01574 = 1.60434; x = 0.886 - 0.160434 = 0.725566
///   Heavy ball step 1: buf = 0.6; x = 0.94. Step 2: d = 0.594; buf = 1.134; x = 0.8266
#[test]
fn two_steps_match_hand_derived_values() {
    let mut cfg = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.1,
    };
    let (mut x, mut buf) = (vec![1.0f32], vec![0.0f32]);
    sgd_update(&mut x, &[0.5], &mut buf, 0.1, &cfg);
    assert!(close(x[0], 0.886) && close(buf[0], 0.6), "{x:?} {buf:?}");
    sgd_update(&mut x, &[0.5], &mut buf, 0.1, &cfg);
    assert!(
        close(x[0], 0.725566) && close(buf[0], 1.1286),
        "{x:?} {buf:?}"
    );

    cfg.nesterov = false;
    let (mut x, mut buf) = (vec![1.0f32], vec![0.0f32]);
    sgd_update(&mut x, &[0.5], &mut buf, 0.1, &cfg);
    assert!(close(x[0], 0.94), "{x:?}");
    sgd_update(&mut x, &[0.5], &mut buf, 0.1, &cfg);
    assert!(close(x[0], 0.8266) && close(buf[0], 1.134), "{x:?} {buf:?}");
}

/// With no momentum and no decay the rule is plain gradient descent.
#[test]
fn without_momentum_it_is_plain_sgd() {
    let cfg = SgdConfig {
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    };
    let mut x = vec![1.0f32, -2.0, 3.0];
    let mut buf = vec![0.0; 3];
    sgd_update(&mut x, &[1.0, 1.0, -1.0], &mut buf, 0.5, &cfg);
    assert_eq!(x, vec![0.5, -2.5, 3.5]);
}

/// `Sgd::step` on a model (in place inside candle's storage) equals `sgd_update` on flat copies.
#[test]
fn model_step_equals_flat_update() {
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let dev = Device::Cpu;
    let model = Model::new(ModelKind::Mlp, shape, 10, 7, &dev).unwrap();
    let cfg = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
    };
    let mut opt = Sgd::new(cfg, &model.params);
    let x = Tensor::randn(0f32, 1.0, (4, 1, 28, 28), &dev).unwrap();
    let y = Tensor::new(&[1u32, 2, 3, 4], &dev).unwrap();
    let mut expected = model.params.to_flat().unwrap();
    let mut buf = vec![0f32; expected.len()];
    for _ in 0..2 {
        let loss = candle_nn::loss::cross_entropy(&model.forward_t(&x, true).unwrap(), &y).unwrap();
        let grads = loss.backward().unwrap();
        let mut g = vec![0f32; expected.len()];
        for (var, e) in model.params.vars().iter().zip(model.params.table()) {
            let gv = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            g[e.offset..e.offset + e.len].copy_from_slice(&gv);
        }
        sgd_update(&mut expected, &g, &mut buf, 0.05, &cfg);
        opt.step(&model.params, &grads, 0.05).unwrap();
    }
    let got = model.params.to_flat().unwrap();
    assert_eq!(got, expected);
    assert_eq!(opt.momentum(), &buf[..]);
}
