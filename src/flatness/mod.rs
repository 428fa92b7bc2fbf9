//! Flatness of the training loss at a model: the largest Hessian eigenvalue and trace figures, the
//! GRAWA paper's measure of how flat an optimum is (DESIGN.md section 2, "Flatness").
//!
//! Pure math over an abstract operator `v -> H v`: `tridiag` (eigenvalues of the Lanczos matrix),
//! [`lanczos`](mod@lanczos) (largest eigenvalue and Ritz sum, several random starts),
//! [`hutchinson`](mod@hutchinson) (an unbiased trace estimate with its standard error).

pub mod hutchinson;
pub mod lanczos;
pub mod tridiag;

pub use hutchinson::{hutchinson, try_hutchinson, TraceEstimate};
pub use lanczos::{lanczos, lanczos_starts, try_lanczos, try_lanczos_starts, LanczosRun, Spectrum};
pub use tridiag::{count_below, tridiagonal_eigenvalues, TridiagError};
