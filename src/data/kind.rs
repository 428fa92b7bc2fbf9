//! Which data set, and the facts that follow from the choice: image shape, number of classes, and
//! where its files come from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::DataError;

/// The shape of one image, stored channel-major (CHW) and row-major within a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageShape {
    /// Colour channels (1 for MNIST, 3 for CIFAR).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageShape {
    /// A shape from its three sizes.
    pub const fn new(channels: usize, height: usize, width: usize) -> Self {
        ImageShape {
            channels,
            height,
            width,
        }
    }

    /// Values per image: channels x height x width.
    pub const fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True when some size is zero.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per channel: height x width.
    pub const fn plane(&self) -> usize {
        self.height * self.width
    }
}

impl fmt::Display for ImageShape {
    /// `CxHxW`, e.g. `1x28x28`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// The data sets this crate can train on. Names (CLI, config files, JSON) are
/// `mnist`, `fashion-mnist`, `cifar10`, `cifar100`, `synthetic` and `folder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Handwritten digits, 1x28x28, 10 classes, 60000/10000.
    Mnist,
    /// Zalando clothing images, 1x28x28, 10 classes, 60000/10000.
    FashionMnist,
    /// Small colour photos, 3x32x32, 10 classes, 50000/10000.
    #[serde(rename = "cifar10")]
    Cifar10,
    /// Small colour photos, 3x32x32, 100 (fine) classes, 50000/10000.
    #[serde(rename = "cifar100")]
    Cifar100,
    /// Seeded, generated in memory; shape and size come from a [`crate::data::SyntheticSpec`].
    Synthetic,
    /// A researcher's own images in class folders (`train/`, `test/`, optional `val/`), resized
    /// to the shape a [`crate::data::FolderSpec`] asks for; classes from the folder names.
    Folder,
}

impl DatasetKind {
    /// Every kind, in the order used in help texts.
    pub fn all() -> &'static [DatasetKind] {
        &[
            DatasetKind::Mnist,
            DatasetKind::FashionMnist,
            DatasetKind::Cifar10,
            DatasetKind::Cifar100,
            DatasetKind::Synthetic,
            DatasetKind::Folder,
        ]
    }

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Synthetic => "synthetic",
            DatasetKind::Folder => "folder",
        }
    }

    /// The fixed image shape of a file-backed set; `None` for `synthetic` and `folder`, whose
    /// shape is chosen.
    pub fn image_shape(self) -> Option<ImageShape> {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => Some(ImageShape::new(1, 28, 28)),
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => Some(ImageShape::new(3, 32, 32)),
            DatasetKind::Synthetic | DatasetKind::Folder => None,
        }
    }

    /// Number of classes. For `synthetic` this is the default of [`crate::data::SyntheticSpec`];
    /// the spec in use may choose another, and a folder has as many as class folders (read
    /// [`crate::data::Dataset::num_classes`] then).
    pub fn num_classes(self) -> usize {
        match self {
            DatasetKind::Cifar100 => 100,
            _ => 10,
        }
    }

    /// One line telling the user how to get the files of this data set.
    pub fn fetch_hint(self) -> &'static str {
        match self {
            DatasetKind::Mnist => {
                "run scripts/fetch-data.sh mnist, or pass --data-dir / set GRAWA_DATA"
            }
            DatasetKind::FashionMnist => {
                "run scripts/fetch-data.sh fashion-mnist, or pass --data-dir / set GRAWA_DATA"
            }
            DatasetKind::Cifar10 => {
                "download the binary version https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz \
                 and untar it in the data dir (it holds cifar-10-batches-bin/), or pass --data-dir / \
                 set GRAWA_DATA"
            }
            DatasetKind::Cifar100 => {
                "download the binary version https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz \
                 and untar it in the data dir (it holds cifar-100-binary/), or pass --data-dir / \
                 set GRAWA_DATA"
            }
            DatasetKind::Synthetic => "the synthetic data set needs no files",
            DatasetKind::Folder => {
                "pass --data-dir DIR holding train/<class>/<images> and test/<class>/<images>"
            }
        }
    }

    /// Comma-separated list of all names, for error and help messages.
    pub fn allowed_names() -> String {
        let names: Vec<&str> = Self::all().iter().map(|k| k.name()).collect();
        names.join(", ")
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    /// Parses one of the names of [`DatasetKind::all`] (exactly, lower case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::all()
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| DataError::UnknownDataset {
                name: s.to_string(),
                allowed: Self::allowed_names(),
            })
    }
}
