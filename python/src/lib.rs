//! Python bindings of ipwash: `ipwash.Washer` washes Arrow columns of
//! addresses (zero-copy through the Arrow C data interface) for Spark,
//! Polars and DuckDB, plain Python lists, and capture files.

pub mod kernel;

#[cfg(feature = "python")]
mod py {
    use std::path::PathBuf;
    use std::sync::Arc;

    use arrow_array::Array;
    use clap::Parser;
    use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
    use pyo3::prelude::*;
    use pyo3::types::{PyDict, PyList};
    use pyo3_arrow::input::AnyArray;
    use pyo3_arrow::{PyArray, PyChunkedArray};

    use crate::kernel::{Kernel, KernelError, OnError};
    use ipwash::method::{self, MethodArgs};
    use ipwash::wash::KeepPrefix;

    /// The method options, parsed exactly as the command line parses them.
    #[derive(Debug, Parser)]
    #[command(name = "ipwash.Washer", no_binary_name = true)]
    struct Opts {
        #[command(flatten)]
        method: MethodArgs,
    }

    /// Wash IP addresses in Arrow arrays, Python lists and capture files.
    ///
    /// Washer(method, key_file=None, *, state_file=None, keep=(), on_error="raise",
    ///        threads=None, **method_options)
    ///
    /// `method` and `method_options` are those of `ipwash map` (underscores for
    /// dashes: ipv4_prefix=16, numbering="dnswasher", preserve_class=True, ...).
    /// Keys come from files, never from arguments. enumerate and prefix-map need
    /// `state_file`: a table from `ipwash state merge` or `ipwash wash --state`,
    /// used read-only (an address not in it is a bad value).
    #[pyclass(module = "ipwash._ipwash", frozen)]
    struct Washer {
        kernel: Arc<Kernel>,
        pool: Arc<rayon::ThreadPool>,
        flags: Vec<String>,
        state: Option<PathBuf>,
        keep: Vec<String>,
        stateful: bool,
    }

    fn flag_args(method: &str, opts: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<String>> {
        let mut v = vec!["--method".to_string(), method.to_string()];
        if let Some(d) = opts {
            for (k, val) in d.iter() {
                let k: String = k.extract()?;
                let flag = format!("--{}", k.replace('_', "-"));
                if val.is_none() {
                    continue;
                }
                if let Ok(b) = val.cast::<pyo3::types::PyBool>() {
                    if b.is_true() {
                        v.push(flag);
                    }
                    continue;
                }
                let s: String = if let Ok(p) = val.extract::<PathBuf>() {
                    p.display().to_string()
                } else {
                    val.str()?.extract()?
                };
                v.push(flag);
                v.push(s);
            }
        }
        Ok(v)
    }

    fn kernel_err(e: KernelError) -> PyErr {
        match e {
            KernelError::Type(_) => PyTypeError::new_err(e.to_string()),
            _ => PyValueError::new_err(e.to_string()),
        }
    }

    #[pymethods]
    impl Washer {
        #[new]
        #[pyo3(signature = (method, key_file=None, *, state_file=None, keep=Vec::new(), on_error="raise", threads=None, **method_options))]
        fn new(
            method: &str,
            key_file: Option<PathBuf>,
            state_file: Option<PathBuf>,
            keep: Vec<String>,
            on_error: &str,
            threads: Option<usize>,
            method_options: Option<&Bound<'_, PyDict>>,
        ) -> PyResult<Self> {
            let mut flags = flag_args(method, method_options)?;
            if let Some(k) = &key_file {
                flags.push("--key-file".into());
                flags.push(k.display().to_string());
            }
            let opts = Opts::try_parse_from(&flags)
                .map_err(|e| PyValueError::new_err(e.render().to_string()))?;
            let on_error = match on_error {
                "raise" => OnError::Raise,
                "null" => OnError::Null,
                _ => return Err(PyValueError::new_err("on_error is \"raise\" or \"null\"")),
            };
            let keep_p = keep
                .iter()
                .map(|k| KeepPrefix::parse(k).map_err(PyValueError::new_err))
                .collect::<PyResult<Vec<_>>>()?;
            let stateful = opts.method.method.stateful();
            let frozen = match (&state_file, stateful) {
                (Some(p), true) => Some(
                    ipwash::fanout::load_frozen(p, &opts.method)
                        .map_err(|e| PyValueError::new_err(e.msg))?,
                ),
                (Some(_), false) => {
                    return Err(PyValueError::new_err(format!(
                        "state_file: {} keeps no state",
                        opts.method.method.name()
                    )))
                }
                (None, _) => None,
            };
            let built = method::build(&opts.method).map_err(|e| PyValueError::new_err(e.0))?;
            let kernel =
                Kernel::new(built, keep_p, frozen, on_error).map_err(PyValueError::new_err)?;
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .clamp(1, 256);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
            Ok(Washer {
                kernel: Arc::new(kernel),
                pool: Arc::new(pool),
                flags,
                state: state_file,
                keep,
                stateful,
            })
        }

        /// Wash an Arrow array (anything with `__arrow_c_array__`, e.g. a
        /// pyarrow.Array) or stream (`__arrow_c_stream__`: a
        /// pyarrow.ChunkedArray, a polars.Series). Returns a pyarrow.Array,
        /// or a pyarrow.ChunkedArray for a stream, of the same type; nulls
        /// stay null. The GIL is released while washing.
        fn map<'py>(&self, py: Python<'py>, array: AnyArray) -> PyResult<Bound<'py, PyAny>> {
            let kernel = self.kernel.clone();
            let pool = self.pool.clone();
            match array {
                AnyArray::Array(a) => {
                    let (arr, field) = a.into_inner();
                    let out = py
                        .detach(|| pool.install(|| kernel.wash(arr.as_ref())))
                        .map_err(kernel_err)?;
                    let f = field
                        .as_ref()
                        .clone()
                        .with_data_type(out.data_type().clone());
                    // Handed to pyarrow through the C data interface (no copy).
                    let obj = PyArray::new(out, Arc::new(f)).into_pyobject(py)?;
                    py.import("pyarrow")?.getattr("array")?.call1((obj,))
                }
                AnyArray::Stream(s) => {
                    let ch = AnyArray::Stream(s).into_chunked_array()?;
                    let (chunks, field) = ch.into_inner();
                    let out = py
                        .detach(|| {
                            pool.install(|| {
                                chunks
                                    .iter()
                                    .map(|c| kernel.wash(c.as_ref()))
                                    .collect::<Result<Vec<_>, _>>()
                            })
                        })
                        .map_err(kernel_err)?;
                    let f = field.as_ref().clone();
                    let f = match out.first() {
                        Some(c) => f.with_data_type(c.data_type().clone()),
                        None => f,
                    };
                    PyChunkedArray::try_new(out, Arc::new(f))?.into_pyarrow(py)
                }
            }
        }

        /// Wash a list of str (addresses or `addr/len` prefixes), bytes (4 or
        /// 16) or None; returns a list of the same kinds.
        fn map_pylist<'py>(
            &self,
            py: Python<'py>,
            values: &Bound<'py, PyList>,
        ) -> PyResult<Bound<'py, PyList>> {
            let mut strs: Vec<Option<String>> = Vec::with_capacity(values.len());
            let mut bins: Vec<Option<Vec<u8>>> = Vec::new();
            let mut binary = None;
            for v in values.iter() {
                if v.is_none() {
                    strs.push(None);
                    bins.push(None);
                    continue;
                }
                if let Ok(s) = v.extract::<String>() {
                    if binary == Some(true) {
                        return Err(PyTypeError::new_err("a list of str or of bytes, not both"));
                    }
                    binary = Some(false);
                    strs.push(Some(s));
                } else if let Ok(b) = v.cast::<pyo3::types::PyBytes>() {
                    let b = b.as_bytes().to_vec();
                    if binary == Some(false) {
                        return Err(PyTypeError::new_err("a list of str or of bytes, not both"));
                    }
                    binary = Some(true);
                    bins.push(Some(b));
                } else {
                    return Err(PyTypeError::new_err("values must be str, bytes or None"));
                }
            }
            let kernel = self.kernel.clone();
            let pool = self.pool.clone();
            if binary == Some(true) {
                let arr = arrow_array::BinaryArray::from_iter(bins.iter().map(|b| b.as_deref()));
                let out = py
                    .detach(|| pool.install(|| kernel.wash(&arr)))
                    .map_err(kernel_err)?;
                let out = out
                    .as_any()
                    .downcast_ref::<arrow_array::BinaryArray>()
                    .ok_or_else(|| PyRuntimeError::new_err("internal: binary out"))?;
                let items: Vec<Option<Bound<'py, pyo3::types::PyBytes>>> = out
                    .iter()
                    .map(|b| b.map(|b| pyo3::types::PyBytes::new(py, b)))
                    .collect();
                PyList::new(py, items)
            } else {
                let arr = arrow_array::StringArray::from_iter(strs.iter().map(|s| s.as_deref()));
                let out = py
                    .detach(|| pool.install(|| kernel.wash(&arr)))
                    .map_err(kernel_err)?;
                let out = out
                    .as_any()
                    .downcast_ref::<arrow_array::StringArray>()
                    .ok_or_else(|| PyRuntimeError::new_err("internal: string out"))?;
                PyList::new(py, out.iter().collect::<Vec<_>>())
            }
        }

        /// Wash a capture (pcap, pcapng, C-DNS; plain, gzip or xz) from path
        /// `inp` to path `out`, exactly as `ipwash wash` does (the output
        /// appears under its name only when complete). `scope` is "all" or
        /// "clients". Raises on any error.
        #[pyo3(signature = (inp, out, *, scope="all", unparsed="drop"))]
        fn wash_file(
            &self,
            py: Python<'_>,
            inp: PathBuf,
            out: PathBuf,
            scope: &str,
            unparsed: &str,
        ) -> PyResult<()> {
            let mut argv: Vec<String> = vec!["ipwash".into(), "wash".into(), "-q".into()];
            argv.extend(self.flags.iter().cloned());
            for k in &self.keep {
                argv.push("--keep".into());
                argv.push(k.clone());
            }
            if let Some(s) = &self.state {
                argv.extend(["--state".into(), s.display().to_string()]);
                argv.push("--state-readonly".into());
            } else if self.stateful {
                return Err(PyValueError::new_err(
                    "enumerate and prefix-map need state_file=",
                ));
            }
            argv.extend([
                "--scope".into(),
                scope.into(),
                "--unparsed".into(),
                unparsed.into(),
                "--threads".into(),
                self.pool.current_num_threads().to_string(),
                inp.display().to_string(),
                "-o".into(),
                out.display().to_string(),
            ]);
            let cli = ipwash::cli::Cli::try_parse_from(&argv)
                .map_err(|e| PyValueError::new_err(e.render().to_string()))?;
            let ipwash::cli::Command::Wash(args) = cli.command else {
                return Err(PyRuntimeError::new_err("internal: not a wash"));
            };
            py.detach(|| ipwash::pipeline::run_wash(&args))
                .map_err(|e| match e.code {
                    2 => PyValueError::new_err(e.msg),
                    _ => PyRuntimeError::new_err(e.msg),
                })
        }

        /// Worker threads of this washer's pool.
        #[getter]
        fn threads(&self) -> usize {
            self.pool.current_num_threads()
        }
    }

    #[pymodule]
    fn _ipwash(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_class::<Washer>()?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
