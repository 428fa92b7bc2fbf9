//! Data set names: parsing, display, serde, and the facts each kind carries.

use grawa_train::data::{DatasetKind, ImageShape};

#[test]
fn names_round_trip_through_fromstr_display_and_serde() {
    let names = [
        "mnist",
        "fashion-mnist",
        "cifar10",
        "cifar100",
        "synthetic",
        "folder",
    ];
    assert_eq!(DatasetKind::all().len(), names.len());
    for (&k, name) in DatasetKind::all().iter().zip(names) {
        assert_eq!(k.to_string(), name);
        assert_eq!(name.parse::<DatasetKind>().unwrap(), k);
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<DatasetKind>(&json).unwrap(), k);
    }
}

#[test]
fn unknown_name_lists_the_allowed_ones() {
    let e = "cifar-10".parse::<DatasetKind>().unwrap_err().to_string();
    assert!(e.contains("'cifar-10'"), "{e}");
    assert!(
        e.contains("mnist, fashion-mnist, cifar10, cifar100, synthetic, folder"),
        "{e}"
    );
    assert!("MNIST".parse::<DatasetKind>().is_err());
    assert!(serde_json::from_str::<DatasetKind>("\"fashion_mnist\"").is_err());
}

#[test]
fn shapes_classes_and_hints() {
    use DatasetKind::*;
    let mnist = ImageShape::new(1, 28, 28);
    let cifar = ImageShape::new(3, 32, 32);
    assert_eq!(Mnist.image_shape(), Some(mnist));
    assert_eq!(FashionMnist.image_shape(), Some(mnist));
    assert_eq!(Cifar10.image_shape(), Some(cifar));
    assert_eq!(Cifar100.image_shape(), Some(cifar));
    assert_eq!(Synthetic.image_shape(), None);
    assert_eq!(Folder.image_shape(), None);
    assert_eq!((mnist.len(), cifar.len(), cifar.plane()), (784, 3072, 1024));
    assert_eq!(cifar.to_string(), "3x32x32");
    let classes: Vec<usize> = DatasetKind::all().iter().map(|k| k.num_classes()).collect();
    // A folder's class count is its class folders' (read `Dataset::num_classes`); 10 is a default.
    assert_eq!(classes, vec![10, 10, 10, 100, 10, 10]);
    assert!(Mnist.fetch_hint().contains("scripts/fetch-data.sh mnist"));
    assert!(FashionMnist
        .fetch_hint()
        .contains("scripts/fetch-data.sh fashion-mnist"));
    assert!(Cifar10.fetch_hint().contains("cifar-10-batches-bin"));
    assert!(Cifar100.fetch_hint().contains("cifar-100-binary"));
    assert!(Folder.fetch_hint().contains("train/<class>"));
}

#[test]
fn image_shape_serde() {
    let s = ImageShape::new(3, 32, 32);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, r#"{"channels":3,"height":32,"width":32}"#);
    assert_eq!(serde_json::from_str::<ImageShape>(&json).unwrap(), s);
}
