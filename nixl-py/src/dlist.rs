//! Descriptor lists: `nixlXferDList` (addr, len, dev), `nixlRegDList` (addr, len, dev, meta)
//! and `nixlRemoteDList` (addr, len, dev, agent). Built from a type and nothing, a size, a list
//! of tuples or an N×3 numpy array; indexable, comparable and picklable (the pickled bytes are
//! what LMCache sends between peers).

use std::sync::Arc;

use nixl_core::{Desc, DescList, MAX_META_BYTES, MemType, RegDesc, RegDescList, XferDescList};
use pyo3::exceptions::{PyIndexError, PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyBytes, PyInt, PyTuple};

use crate::arrays;
use crate::enums::PyMemType;
use crate::errors::IntoPy;

/// One element type of a descriptor list: how it crosses into Python and into pickled bytes.
pub trait Elem: Clone + Default + PartialEq + Send + Sync + Sized + 'static {
    /// Fields per numpy row, if numpy arrays may build the list.
    const ROW: usize = 3;
    /// From a Python tuple.
    fn from_py(t: &Bound<'_, PyAny>) -> PyResult<Self>;
    /// From one numpy row.
    fn from_row(row: &[u64]) -> Self;
    /// From the rows of a `uint64` array, `ROW` values each.
    fn from_rows(values: &[u64]) -> Vec<Self> {
        values.chunks_exact(Self::ROW).map(Self::from_row).collect()
    }
    /// Into a Python tuple.
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>>;
    /// Pickled bytes of a list of these.
    fn pickle(list: &DescList<Self>) -> Vec<u8>;
    /// A list of these back from pickled bytes; garbage is INVALID_PARAM.
    fn unpickle(bytes: &[u8]) -> nixl_core::Result<DescList<Self>>;
    /// The range.
    fn desc(&self) -> Desc;
}

fn triple<'py>(
    t: &Bound<'py, PyAny>,
    want: usize,
) -> PyResult<(u64, u64, u64, Option<Bound<'py, PyAny>>)> {
    let t = t
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err(format!("a descriptor is a {want}-tuple")))?;
    if t.len() != want {
        return Err(PyTypeError::new_err(format!(
            "a descriptor is a {want}-tuple, got {} fields",
            t.len()
        )));
    }
    let field = |i: usize| -> PyResult<u64> {
        t.get_item(i)?.extract::<u64>().map_err(|_| {
            PyTypeError::new_err("descriptor addr, len and dev must be non-negative ints")
        })
    };
    let extra = if want > 3 { Some(t.get_item(3)?) } else { None };
    Ok((field(0)?, field(1)?, field(2)?, extra))
}

impl Elem for Desc {
    fn from_py(t: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (a, l, d, _) = triple(t, 3)?;
        Ok(Desc::new(a, l, d))
    }
    fn from_row(row: &[u64]) -> Self {
        Desc::new(row[0], row[1], row[2])
    }
    fn from_rows(values: &[u64]) -> Vec<Self> {
        // `Desc` is `repr(C)` of three u64s, exactly a row: one copy of the whole array.
        const _: () = assert!(size_of::<Desc>() == 3 * size_of::<u64>());
        const _: () = assert!(align_of::<Desc>() == align_of::<u64>());
        let n = values.len() / 3;
        let mut v: Vec<Desc> = Vec::with_capacity(n);
        // SAFETY: `v` has room for `n` descriptors, which are `3 * n` u64s laid out as in
        // `values` (asserted above); the two buffers are distinct allocations.
        unsafe {
            std::ptr::copy_nonoverlapping(values.as_ptr(), v.as_mut_ptr().cast::<u64>(), 3 * n);
            v.set_len(n);
        }
        v
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, [self.addr, self.len, self.dev_id])
    }
    fn pickle(list: &DescList<Self>) -> Vec<u8> {
        list.to_bytes()
    }
    fn unpickle(bytes: &[u8]) -> nixl_core::Result<DescList<Self>> {
        XferDescList::from_bytes(bytes)
    }
    fn desc(&self) -> Desc {
        *self
    }
}

/// Metadata of a registration descriptor: bytes or str (a file path, an object key), at most
/// `MAX_META_BYTES` (what a pickled list carries back).
fn meta_bytes(m: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let meta = match m.extract::<String>() {
        Ok(s) => s.into_bytes(),
        Err(_) => m
            .extract::<Vec<u8>>()
            .map_err(|_| PyTypeError::new_err("descriptor metadata must be str or bytes"))?,
    };
    if meta.len() > MAX_META_BYTES {
        return Err(PyValueError::new_err(format!(
            "descriptor metadata of {} bytes is over the limit of {MAX_META_BYTES}",
            meta.len()
        )));
    }
    Ok(meta)
}

impl Elem for RegDesc {
    fn from_py(t: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (a, l, d, meta) = triple(t, 4)?;
        Ok(RegDesc::with_meta(
            a,
            l,
            d,
            meta_bytes(&meta.expect("4-tuple"))?,
        ))
    }
    fn from_row(row: &[u64]) -> Self {
        RegDesc::new(row[0], row[1], row[2])
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let d = self.desc;
        PyTuple::new(
            py,
            [
                d.addr.into_pyobject(py)?.into_any(),
                d.len.into_pyobject(py)?.into_any(),
                d.dev_id.into_pyobject(py)?.into_any(),
                PyBytes::new(py, &self.meta).into_any(),
            ],
        )
    }
    fn pickle(list: &DescList<Self>) -> Vec<u8> {
        list.to_bytes()
    }
    fn unpickle(bytes: &[u8]) -> nixl_core::Result<DescList<Self>> {
        RegDescList::from_bytes(bytes)
    }
    fn desc(&self) -> Desc {
        self.desc
    }
}

/// A remote descriptor: a range in a named agent's memory.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct RemoteDesc {
    desc: Desc,
    agent: String,
}

impl Elem for RemoteDesc {
    const ROW: usize = 0;
    fn from_py(t: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (a, l, d, agent) = triple(t, 4)?;
        let agent: String = agent
            .expect("4-tuple")
            .extract()
            .map_err(|_| PyTypeError::new_err("the agent name must be a str"))?;
        if agent.len() > MAX_META_BYTES {
            // Pickled as registration metadata (see `pickle`).
            return Err(PyValueError::new_err(format!(
                "an agent name of {} bytes is over the limit of {MAX_META_BYTES}",
                agent.len()
            )));
        }
        Ok(RemoteDesc {
            desc: Desc::new(a, l, d),
            agent,
        })
    }
    fn from_row(_: &[u64]) -> Self {
        unreachable!("ROW is 0: no numpy path")
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let d = self.desc;
        PyTuple::new(
            py,
            [
                d.addr.into_pyobject(py)?.into_any(),
                d.len.into_pyobject(py)?.into_any(),
                d.dev_id.into_pyobject(py)?.into_any(),
                self.agent.as_str().into_pyobject(py)?.into_any(),
            ],
        )
    }
    // Pickled as registration descriptors whose metadata is the agent's name: the same bytes.
    fn pickle(list: &DescList<Self>) -> Vec<u8> {
        let descs = list.descs().iter();
        let as_reg = descs.map(|d| {
            RegDesc::with_meta(d.desc.addr, d.desc.len, d.desc.dev_id, d.agent.as_bytes())
        });
        RegDescList::from_descs(list.mem_type(), as_reg.collect()).to_bytes()
    }
    fn unpickle(bytes: &[u8]) -> nixl_core::Result<DescList<Self>> {
        let reg = RegDescList::from_bytes(bytes)?;
        let mut v = Vec::with_capacity(reg.len());
        for d in reg.descs() {
            let agent = String::from_utf8(d.meta.clone()).map_err(|_| {
                nixl_core::NixlError::new(
                    nixl_core::Status::InvalidParam,
                    "a pickled remote descriptor's agent name is not UTF-8",
                )
            })?;
            v.push(RemoteDesc {
                desc: d.desc,
                agent,
            });
        }
        Ok(DescList::from_descs(reg.mem_type(), v))
    }
    fn desc(&self) -> Desc {
        self.desc
    }
}

/// Builds a list from NIXL's constructor arguments.
pub fn build<T: Elem>(mem: MemType, descs: Option<&Bound<'_, PyAny>>) -> PyResult<DescList<T>> {
    let Some(descs) = descs.filter(|d| !d.is_none()) else {
        return Ok(DescList::new(mem));
    };
    // `(type, init_size)`: NIXL pre-sizes with empty descriptors.
    if descs.is_instance_of::<PyInt>() {
        let n: usize = descs.extract().map_err(|_| {
            PyTypeError::new_err("a list's initial size must be a non-negative int")
        })?;
        if n > u32::MAX as usize {
            // Pickled lists count their descriptors in 32 bits.
            return Err(PyValueError::new_err(format!(
                "a list's initial size {n} is over 2**32 - 1"
            )));
        }
        let mut v = Vec::new();
        v.try_reserve_exact(n)
            .map_err(|_| PyMemoryError::new_err(format!("no memory for {n} descriptors")))?;
        v.resize(n, T::default());
        return Ok(DescList::from_descs(mem, v));
    }
    if T::ROW > 0
        && let Some(v) = arrays::rows(descs, T::ROW, T::from_rows, T::from_row)?
    {
        return Ok(DescList::from_descs(mem, v));
    }
    if descs.hasattr("__array_interface__")? && T::ROW > 0 {
        // A numpy array of another integer type, byte order, layout or alignment: numpy
        // copies it once, keeping signs (a negative field is refused, never wrapped). Other
        // element types (float, bool, object, ...) are refused: no silent rounding.
        let np = descs.py().import("numpy")?;
        let arr = np.call_method1("asarray", (descs,))?;
        let dtype = arr.getattr("dtype")?;
        let wide = match dtype.getattr("kind")?.extract::<String>()?.as_str() {
            "i" => "int64",
            "u" => "uint64",
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "a descriptor array must hold integers, not {}",
                    dtype.str()?
                )));
            }
        };
        // A copy: C order and aligned, whatever the input was.
        let kw = [("dtype", wide), ("order", "C")].into_py_dict(descs.py())?;
        let conv = np.call_method("array", (arr,), Some(&kw))?;
        if let Some(v) = arrays::rows(&conv, T::ROW, T::from_rows, T::from_row)? {
            return Ok(DescList::from_descs(mem, v));
        }
    }
    let mut v = Vec::new();
    for item in descs
        .try_iter()
        .map_err(|_| PyTypeError::new_err("descriptors must be a list of tuples or an N×3 array"))?
    {
        v.push(T::from_py(&item?)?);
    }
    Ok(DescList::from_descs(mem, v))
}

fn index(len: usize, i: isize) -> PyResult<usize> {
    let j = if i < 0 { i + len as isize } else { i };
    usize::try_from(j)
        .ok()
        .filter(|&j| j < len)
        .ok_or_else(|| PyIndexError::new_err(format!("descriptor index {i} out of range ({len})")))
}

macro_rules! dlist_class {
    ($(#[$doc:meta])* $rust:ident, $py:literal, $elem:ty, { $($extra:tt)* }) => {
        $(#[$doc])*
        #[pyclass(module = "nixl._bindings", name = $py)]
        pub struct $rust {
            /// Shared with native calls running without the GIL; copied on write.
            pub list: Arc<DescList<$elem>>,
        }

        impl $rust {
            fn descs_mut(&mut self) -> &mut Vec<$elem> {
                Arc::make_mut(&mut self.list).descs_mut()
            }
        }

        #[pymethods]
        impl $rust {
            #[new]
            #[pyo3(signature = (r#type, descs = None))]
            fn new(r#type: PyMemType, descs: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
                Ok($rust {
                    list: Arc::new(build::<$elem>(r#type.into(), descs)?),
                })
            }

            /// The memory type.
            #[pyo3(name = "getType")]
            fn get_type(&self) -> PyMemType {
                self.list.mem_type().into()
            }

            /// Number of descriptors.
            #[pyo3(name = "descCount")]
            fn desc_count(&self) -> usize {
                self.list.len()
            }

            /// True if the list is empty.
            #[pyo3(name = "isEmpty")]
            fn is_empty(&self) -> bool {
                self.list.is_empty()
            }

            fn __len__(&self) -> usize {
                self.list.len()
            }

            fn __getitem__<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyTuple>> {
                self.list.descs()[index(self.list.len(), i)?].to_py(py)
            }

            fn __setitem__(&mut self, i: isize, d: &Bound<'_, PyAny>) -> PyResult<()> {
                let i = index(self.list.len(), i)?;
                let d = <$elem>::from_py(d)?;
                self.descs_mut()[i] = d;
                Ok(())
            }

            /// Appends a descriptor.
            #[pyo3(name = "addDesc")]
            fn add_desc(&mut self, d: &Bound<'_, PyAny>) -> PyResult<()> {
                let d = <$elem>::from_py(d)?;
                self.descs_mut().push(d);
                Ok(())
            }

            /// Appends a descriptor (same as `addDesc`).
            fn append(&mut self, d: &Bound<'_, PyAny>) -> PyResult<()> {
                self.add_desc(d)
            }

            /// Position of a descriptor equal to `d`.
            fn index(&self, d: &Bound<'_, PyAny>) -> PyResult<usize> {
                let d = <$elem>::from_py(d)?;
                self.list
                    .descs()
                    .iter()
                    .position(|x| *x == d)
                    .ok_or_else(|| PyValueError::new_err("descriptor not in the list"))
            }

            /// Removes the descriptor at `i`.
            #[pyo3(name = "remDesc")]
            fn rem_desc(&mut self, i: isize) -> PyResult<()> {
                let i = index(self.list.len(), i)?;
                self.descs_mut().remove(i);
                Ok(())
            }

            /// Removes every descriptor.
            fn clear(&mut self) {
                self.descs_mut().clear();
            }

            /// Prints the list.
            fn print(&self) {
                println!("{}", self.__repr__());
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
                other
                    .cast::<$rust>()
                    .is_ok_and(|o| *o.borrow().list == *self.list)
            }

            fn __repr__(&self) -> String {
                let shown: Vec<String> = self
                    .list
                    .descs()
                    .iter()
                    .take(8)
                    .map(|d| {
                        let d = d.desc();
                        format!("(0x{:x}, {}, {})", d.addr, d.len, d.dev_id)
                    })
                    .collect();
                let more = if self.list.len() > 8 { ", ..." } else { "" };
                format!(
                    "{}({}, [{}{}])",
                    $py,
                    self.list.mem_type(),
                    shown.join(", "),
                    more
                )
            }

            fn __getstate__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
                PyBytes::new(py, &<$elem>::pickle(&self.list))
            }

            fn __setstate__(&mut self, bytes: &[u8]) -> PyResult<()> {
                self.list = Arc::new(<$elem>::unpickle(bytes).py()?);
                Ok(())
            }

            fn __reduce__<'py>(
                slf: &Bound<'py, Self>,
            ) -> PyResult<(Bound<'py, PyAny>, (PyMemType,), Bound<'py, PyBytes>)> {
                let me = slf.borrow();
                Ok((
                    slf.get_type().into_any(),
                    (me.list.mem_type().into(),),
                    me.__getstate__(slf.py()),
                ))
            }

            $($extra)*
        }
    };
}

dlist_class!(
    /// Transfer descriptors `(addr, len, dev)` (`nixlXferDList`).
    XferDList,
    "nixlXferDList",
    Desc,
    {}
);
dlist_class!(
    /// Registration descriptors `(addr, len, dev, meta)` (`nixlRegDList`).
    RegDList,
    "nixlRegDList",
    RegDesc,
    {
        /// The ranges without metadata, as a transfer list.
        fn trim(&self) -> XferDList {
            XferDList {
                list: Arc::new(self.list.to_xfer_list()),
            }
        }
    }
);
dlist_class!(
    /// Remote descriptors `(addr, len, dev, agent)` (`nixlRemoteDList`).
    RemoteDList,
    "nixlRemoteDList",
    RemoteDesc,
    {}
);
