//! The CPU option-A shortcut op (`ops::shortcut`) against its device-independent composition
//! (`option_a_shortcut_composed`: reshape, index, concatenation with zeros): the output and the
//! input gradient of sum(y * r), bit for bit (both only copy values and place zeros), on even and
//! odd sides, one-pixel sides and several paddings.

use candle_core::{Device, Tensor, Var};
use grawa_train::model::resnet::{option_a_shortcut, option_a_shortcut_composed};

fn bits(t: &Tensor) -> Vec<u32> {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn same_values_and_gradient_as_the_composition() {
    let dev = Device::Cpu;
    for (i, &(n, c, h, w, pad)) in [
        (2, 16, 32, 32, 8), // ResNet-20's first downsampling at batch 2
        (3, 4, 6, 6, 2),
        (2, 3, 5, 7, 1), // odd sides keep their last row and column
        (1, 2, 1, 1, 3), // one pixel
        (2, 5, 4, 3, 0), // no padding
    ]
    .iter()
    .enumerate()
    {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, h, w), &dev).unwrap()).unwrap();
        let ours = option_a_shortcut(x.as_tensor(), pad).unwrap();
        let theirs = option_a_shortcut_composed(x.as_tensor(), pad).unwrap();
        let what = format!("case {i}: {n}x{c}x{h}x{w} pad {pad}");
        assert_eq!(ours.dims(), theirs.dims(), "{what}: shape");
        assert!(bits(&ours) == bits(&theirs), "{what}: output differs");
        let r = Tensor::randn(0f32, 1.0, ours.dims(), &dev).unwrap();
        let g = |y: &Tensor| {
            let grads = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            grads.get(x.as_tensor()).expect("gradient").clone()
        };
        let (go, gt) = (g(&ours), g(&theirs));
        assert_eq!(go.dims(), &[n, c, h, w], "{what}: gradient shape");
        assert!(bits(&go) == bits(&gt), "{what}: gradient differs");
    }
}
