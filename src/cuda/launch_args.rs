//! What each launcher passes to its kernel, and the kernels' parameter lists as the PTX declares
//! them (pure, compiled in every build).
//!
//! cudarc's launch takes a list of pointers to argument values and checks nothing against the
//! kernel: one argument too many or too few, or an f32 where the kernel reads a u32, is silent
//! memory corruption on the GPU. So every launcher in `cuda::kernels` builds its argument list
//! with one function here (one value per kernel parameter, in order), [`every_kernel`] calls
//! each of them, and [`check_launches`] compares those lists with the `.entry` declarations of
//! the PTX: `Kernels::load` refuses a PTX that does not match, and `tests/ptx_params.rs`
//! compiles `kernels/*.cu` and checks the same on a machine without a GPU.

/// Most workers one launch takes: their buffer pointers travel by value in a kernel parameter.
/// Must match `MAX_WORKERS` in kernels/average.cu (the PTX check sees the parameter's size).
pub const MAX_WORKERS: usize = 64;

/// The workers' buffer pointers, as `struct Workers { float* x[MAX_WORKERS]; }` lays them out.
pub type WorkerPtrs = [u64; MAX_WORKERS];

/// One argument value, as the launch copies it.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// A device pointer.
    Ptr(u64),
    U32(u32),
    U64(u64),
    I32(i32),
    F32(f32),
    /// `struct Workers`, by value (boxed: 512 bytes beside 8).
    Workers(Box<WorkerPtrs>),
}

/// A kernel parameter's type as PTX declares it: what the launch must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// `.u32`, `.s64`, `.b64`, ... (pointers are `.u64`), of this many bytes.
    Int(usize),
    /// `.f32` or `.f64`, of this many bytes.
    Float(usize),
    /// `.align A .b8 name[N]`: a struct passed by value.
    Bytes { len: usize, align: usize },
}

impl Arg {
    /// The parameter this value fills.
    pub fn param(&self) -> Param {
        match self {
            Arg::Ptr(_) | Arg::U64(_) => Param::Int(8),
            Arg::U32(_) | Arg::I32(_) => Param::Int(4),
            Arg::F32(_) => Param::Float(4),
            Arg::Workers(w) => Param::Bytes {
                len: std::mem::size_of_val(&**w),
                align: std::mem::align_of::<u64>(),
            },
        }
    }
}

/// One launch: the kernel's name and its arguments in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub kernel: &'static str,
    pub args: Vec<Arg>,
}

// One function per kernel, one argument per kernel parameter in the kernel's order: the
// parameter lists are as long as the kernels'.

/// `layer_sumsq(x, piece_start, pieces, layer_first_piece, layers, partial, done, out)`.
#[allow(clippy::too_many_arguments)]
pub fn layer_sumsq(
    x: u64,
    piece_start: u64,
    pieces: u32,
    layer_first: u64,
    layers: u32,
    partial: u64,
    done: u64,
    out: u64,
) -> Launch {
    use Arg::*;
    let args = vec![
        Ptr(x),
        Ptr(piece_start),
        U32(pieces),
        Ptr(layer_first),
        U32(layers),
        Ptr(partial),
        Ptr(done),
        Ptr(out),
    ];
    Launch {
        kernel: "layer_sumsq",
        args,
    }
}

/// The parameters `weighted_center` and `center_and_pull` share, in order.
#[derive(Clone, Copy, Debug)]
pub struct Layered {
    pub xs: WorkerPtrs,
    pub m: u32,
    pub w: u64,
    pub worker_stride: u32,
    pub layer_stride: u32,
    pub piece_start: u64,
    pub piece_layer: u64,
    pub pieces: u32,
}

impl Layered {
    fn args(&self) -> Vec<Arg> {
        use Arg::*;
        vec![
            Workers(Box::new(self.xs)),
            U32(self.m),
            Ptr(self.w),
            U32(self.worker_stride),
            U32(self.layer_stride),
            Ptr(self.piece_start),
            Ptr(self.piece_layer),
            U32(self.pieces),
        ]
    }
}

/// `weighted_center(xs, m, w, worker_stride, layer_stride, piece_start, piece_layer, pieces, out)`.
pub fn weighted_center(l: &Layered, out: u64) -> Launch {
    let mut args = l.args();
    args.push(Arg::Ptr(out));
    Launch {
        kernel: "weighted_center",
        args,
    }
}

/// `center_and_pull(..., center, lambda)`: [`weighted_center`]'s parameters, then the pull's.
pub fn center_and_pull(l: &Layered, center: u64, lambda: f32) -> Launch {
    let mut args = l.args();
    args.extend([Arg::Ptr(center), Arg::F32(lambda)]);
    Launch {
        kernel: "center_and_pull",
        args,
    }
}

/// `pull(x, c, n, lambda)`.
pub fn pull(x: u64, c: u64, n: u64, lambda: f32) -> Launch {
    use Arg::*;
    Launch {
        kernel: "pull",
        args: vec![Ptr(x), Ptr(c), U64(n), F32(lambda)],
    }
}

/// `scale_add(x, y, n, a, b)`.
pub fn scale_add(x: u64, y: u64, n: u64, a: f32, b: f32) -> Launch {
    use Arg::*;
    Launch {
        kernel: "scale_add",
        args: vec![Ptr(x), Ptr(y), U64(n), F32(a), F32(b)],
    }
}

/// `divide(x, n, d)`.
pub fn divide(x: u64, n: u64, d: f32) -> Launch {
    use Arg::*;
    Launch {
        kernel: "divide",
        args: vec![Ptr(x), U64(n), F32(d)],
    }
}

/// `easgd_round(xs, m, center, n, beta)`.
pub fn easgd_round(xs: WorkerPtrs, m: u32, center: u64, n: u64, beta: f32) -> Launch {
    use Arg::*;
    Launch {
        kernel: "easgd_round",
        args: vec![
            Workers(Box::new(xs)),
            U32(m),
            Ptr(center),
            U64(n),
            F32(beta),
        ],
    }
}

/// `uniform_average(xs, m, out, n)`.
pub fn uniform_average(xs: WorkerPtrs, m: u32, out: u64, n: u64) -> Launch {
    use Arg::*;
    Launch {
        kernel: "uniform_average",
        args: vec![Workers(Box::new(xs)), U32(m), Ptr(out), U64(n)],
    }
}

/// The scalars of `sgd_step`, after its three buffers and their length.
#[derive(Clone, Copy, Debug, Default)]
pub struct SgdScalars {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

/// `sgd_step(x, g, buf, n, lr, momentum, weight_decay, nesterov)`.
pub fn sgd_step(x: u64, g: u64, buf: u64, n: u64, s: SgdScalars) -> Launch {
    use Arg::*;
    let args = vec![
        Ptr(x),
        Ptr(g),
        Ptr(buf),
        U64(n),
        F32(s.lr),
        F32(s.momentum),
        F32(s.weight_decay),
        // The kernel takes an `int`.
        I32(i32::from(s.nesterov)),
    ];
    Launch {
        kernel: "sgd_step",
        args,
    }
}

/// Every launcher's argument list (with zero values), one per kernel: what the PTX must declare.
pub fn every_kernel() -> Vec<Launch> {
    let xs = [0; MAX_WORKERS];
    let l = Layered {
        xs,
        m: 0,
        w: 0,
        worker_stride: 0,
        layer_stride: 0,
        piece_start: 0,
        piece_layer: 0,
        pieces: 0,
    };
    vec![
        layer_sumsq(0, 0, 0, 0, 0, 0, 0, 0),
        weighted_center(&l, 0),
        center_and_pull(&l, 0, 0.0),
        pull(0, 0, 0, 0.0),
        scale_add(0, 0, 0, 0.0, 0.0),
        divide(0, 0, 0.0),
        easgd_round(xs, 0, 0, 0, 0.0),
        uniform_average(xs, 0, 0, 0),
        sgd_step(0, 0, 0, 0, SgdScalars::default()),
    ]
}

/// A kernel as the PTX declares it: `.entry NAME(.param ..., ...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub params: Vec<Param>,
}

/// The `.entry` declarations of a PTX module, in order.
pub fn ptx_entries(ptx: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut rest = ptx;
    while let Some(at) = rest.find(".entry ") {
        rest = &rest[at + ".entry ".len()..];
        let open = rest.find('(').ok_or("an .entry without a parameter list")?;
        let close = rest[open..]
            .find(')')
            .map(|c| open + c)
            .ok_or("an .entry whose parameter list does not close")?;
        let name = rest[..open].trim().to_string();
        let list = rest[open + 1..close].trim();
        let params = if list.is_empty() {
            Vec::new()
        } else {
            list.split(',')
                .map(parse_param)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("kernel {name}: {e}"))?
        };
        entries.push(Entry { name, params });
        rest = &rest[close..];
    }
    Ok(entries)
}

/// One `.param` declaration: `.param [.align A] [.ptr ...] .TYPE name[[N]]`.
fn parse_param(decl: &str) -> Result<Param, String> {
    let words: Vec<&str> = decl.split_whitespace().collect();
    if words.first() != Some(&".param") {
        return Err(format!("cannot read parameter {decl:?}"));
    }
    let align = words
        .iter()
        .position(|w| *w == ".align")
        .and_then(|i| words.get(i + 1))
        .map(|a| {
            a.parse::<usize>()
                .map_err(|_| format!("bad .align in {decl:?}"))
        })
        .transpose()?;
    let (class, bits) = words
        .iter()
        .find_map(|w| scalar_type(w))
        .ok_or_else(|| format!("no type in parameter {decl:?}"))?;
    let bytes = bits / 8;
    let name = words.last().copied().unwrap_or_default();
    if let Some(open) = name.find('[') {
        let count: usize = name[open + 1..]
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("bad array length in {decl:?}"))?;
        return Ok(Param::Bytes {
            len: bytes * count,
            align: align.unwrap_or(bytes),
        });
    }
    Ok(if class == 'f' {
        Param::Float(bytes)
    } else {
        Param::Int(bytes)
    })
}

/// `.u32` -> ('u', 32); None for anything that is not a scalar type.
fn scalar_type(word: &str) -> Option<(char, usize)> {
    let rest = word.strip_prefix('.')?;
    let class = rest.chars().next()?;
    let bits: usize = rest[1..].parse().ok()?;
    ("usbf".contains(class) && [8, 16, 32, 64].contains(&bits)).then_some((class, bits))
}

/// Every launch matches its kernel's parameters one for one, and every kernel has a launch.
/// The error lists each mismatch.
pub fn check_launches(entries: &[Entry], launches: &[Launch]) -> Result<(), String> {
    let mut problems = Vec::new();
    for l in launches {
        let passed: Vec<Param> = l.args.iter().map(Arg::param).collect();
        match entries.iter().find(|e| e.name == l.kernel) {
            None => problems.push(format!("{}: no such kernel in the PTX", l.kernel)),
            Some(e) if e.params != passed => problems.push(format!(
                "{}: the kernel declares {} parameters {:?}, its launcher passes {} {:?}",
                l.kernel,
                e.params.len(),
                e.params,
                passed.len(),
                passed
            )),
            Some(_) => {}
        }
    }
    for e in entries {
        if !launches.iter().any(|l| l.kernel == e.name) {
            problems.push(format!("{}: a kernel in the PTX with no launcher", e.name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
