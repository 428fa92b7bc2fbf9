//! Flatness of the training loss at a model: the largest Hessian eigenvalue and trace figures, the
//! GRAWA paper's measure of how flat an optimum is (DESIGN.md section 2, "Flatness").
//!
//! `tridiag` computes the eigenvalues of the small tridiagonal matrix that Lanczos produces.

pub mod tridiag;

pub use tridiag::{count_below, tridiagonal_eigenvalues, TridiagError};
