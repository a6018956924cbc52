//! Reading numpy arrays without numpy's C API: the array interface protocol gives the data
//! pointer, shape, element type and strides, so an N×3 descriptor array or an index array is
//! read in place (one pass over its memory, no Python objects per element). Its C form
//! (`__array_struct__`, one capsule) is read first: the Python form (`__array_interface__`)
//! builds a dict of strings, tuples and lists on every access, a tenth of the cost of a 41k-index
//! `makeXferReq`. Objects with only the Python form (other array libraries) use that.

use std::ffi::{c_char, c_int, c_void};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

/// Element types read in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    I32,
    U32,
    I64,
    U64,
}

impl Elem {
    /// From `__array_struct__`'s type kind ('i', 'u') and item size.
    fn from_kind(kind: u8, size: c_int) -> Option<Elem> {
        Some(match (kind, size) {
            (b'i', 4) => Elem::I32,
            (b'u', 4) => Elem::U32,
            (b'i', 8) => Elem::I64,
            (b'u', 8) => Elem::U64,
            _ => return None,
        })
    }

    fn parse(typestr: &str) -> Option<Elem> {
        // Little-endian or native ('=' is reported as '<' on little-endian hosts).
        let t = typestr
            .strip_prefix('<')
            .or_else(|| typestr.strip_prefix('|'))?;
        Some(match t {
            "i4" => Elem::I32,
            "u4" => Elem::U32,
            "i8" => Elem::I64,
            "u8" => Elem::U64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Elem::I32 | Elem::U32 => 4,
            Elem::I64 | Elem::U64 => 8,
        }
    }
}

/// A C-contiguous integer array found through `__array_interface__`.
struct Contig<'py> {
    ptr: usize,
    shape: Vec<usize>,
    elem: Elem,
    /// The `__array_struct__` capsule: it owns a reference to the array, the only one if the
    /// object handed out a temporary's, so it must live while the memory is read.
    _keep: Option<Bound<'py, PyAny>>,
}

impl<'py> Contig<'py> {
    /// Refuses what no real array can be (the protocols are the object's word, taken as is):
    /// a null pointer or a size past `isize::MAX` bytes.
    fn checked(self) -> PyResult<Self> {
        let bytes = self
            .shape
            .iter()
            .try_fold(self.elem.size(), |acc, &d| acc.checked_mul(d))
            .filter(|&b| isize::try_from(b).is_ok());
        match bytes {
            Some(0) => Ok(self),
            Some(_) if self.ptr != 0 => Ok(self),
            _ => Err(PyTypeError::new_err(format!(
                "the array interface describes no valid array (shape {:?} at {:#x})",
                self.shape, self.ptr
            ))),
        }
    }
}

/// numpy's `PyArrayInterface`, the C form of the array interface (version 3, as published in
/// numpy's documentation "The array interface protocol").
#[repr(C)]
struct ArrayStruct {
    two: c_int,
    nd: c_int,
    typekind: c_char,
    itemsize: c_int,
    flags: c_int,
    shape: *const isize,
    strides: *const isize,
    data: *const c_void,
}

/// `flags` bits: C-contiguous, aligned, in native byte order.
const C_CONTIGUOUS: c_int = 0x1;
const ALIGNED: c_int = 0x100;
const NOTSWAPPED: c_int = 0x200;

/// The array from its `__array_struct__` capsule; `None` if `obj` has none, or describes an
/// array this module reads through the generic path (strided, unaligned, swapped, other type).
fn from_struct<'py>(obj: &Bound<'py, PyAny>) -> Option<Contig<'py>> {
    let keep = obj.getattr("__array_struct__").ok()?;
    let capsule = keep.cast::<PyCapsule>().ok()?;
    let ptr = capsule.pointer_checked(None).ok()?;
    // SAFETY: an `__array_struct__` capsule holds a `PyArrayInterface`, valid while the
    // capsule lives (it keeps the array alive); `two == 2` is the protocol's sanity check.
    let s = unsafe { &*ptr.as_ptr().cast::<ArrayStruct>() };
    let want = C_CONTIGUOUS | ALIGNED | NOTSWAPPED;
    if s.two != 2 || s.flags & want != want || s.nd < 0 || (s.nd > 0 && s.shape.is_null()) {
        return None;
    }
    let elem = Elem::from_kind(s.typekind as u8, s.itemsize)?;
    let shape = if s.nd == 0 {
        Vec::new()
    } else {
        // SAFETY: `shape` holds `nd` entries (checked non-null above).
        unsafe { std::slice::from_raw_parts(s.shape, s.nd as usize) }
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<Vec<usize>>>()?
    };
    let ptr = s.data as usize;
    ptr.is_multiple_of(elem.size()).then_some(Contig {
        ptr,
        shape,
        elem,
        _keep: Some(keep.clone()),
    })
}

fn contiguous<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Contig<'py>>> {
    if let Some(c) = from_struct(obj) {
        return c.checked().map(Some);
    }
    let Ok(iface) = obj.getattr("__array_interface__") else {
        return Ok(None);
    };
    let iface = iface.cast_into::<PyDict>()?;
    let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
        iface
            .get_item(k)?
            .ok_or_else(|| PyTypeError::new_err(format!("__array_interface__ lacks {k}")))
    };
    let (ptr, _readonly): (usize, bool) = get("data")?.extract()?;
    let shape: Vec<usize> = get("shape")?.extract()?;
    let typestr: String = get("typestr")?.extract()?;
    let Some(elem) = Elem::parse(&typestr) else {
        return Ok(None);
    };
    if ptr % elem.size() != 0 {
        // Unaligned views are read through the generic path.
        return Ok(None);
    }
    let strides: Option<Vec<isize>> = get("strides")?.extract()?;
    if let Some(strides) = strides {
        // C-contiguous strides are allowed to be spelled out.
        let mut expect = elem.size() as isize;
        for (dim, stride) in shape.iter().zip(&strides).rev() {
            if *dim > 1 && *stride != expect {
                return Ok(None);
            }
            expect = expect.saturating_mul(isize::try_from(*dim).unwrap_or(isize::MAX));
        }
    }
    Contig {
        ptr,
        shape,
        elem,
        _keep: None,
    }
    .checked()
    .map(Some)
}

/// Reads element `i` of a contiguous array as i128 (every supported type fits).
///
/// # Safety
/// `c` must describe live memory with at least `i + 1` elements.
unsafe fn at(c: &Contig<'_>, i: usize) -> i128 {
    // SAFETY: the caller guarantees `i` is in bounds of the array's live buffer; numpy
    // aligns its buffers to the element size, and unaligned reads are used anyway.
    unsafe {
        match c.elem {
            Elem::I32 => i128::from((c.ptr as *const i32).add(i).read_unaligned()),
            Elem::U32 => i128::from((c.ptr as *const u32).add(i).read_unaligned()),
            Elem::I64 => i128::from((c.ptr as *const i64).add(i).read_unaligned()),
            Elem::U64 => i128::from((c.ptr as *const u64).add(i).read_unaligned()),
        }
    }
}

/// The rows of an N×`width` integer array read in place, or `None` if `obj` is not such an
/// array (the caller then falls back to the generic path). A `uint64` array is handed whole to
/// `flat` (N×`width` values, row after row); other types are converted row by row through
/// `row`, negative values being an error.
pub fn rows<T>(
    obj: &Bound<'_, PyAny>,
    width: usize,
    flat: impl FnOnce(&[u64]) -> Vec<T>,
    row: impl Fn(&[u64]) -> T,
) -> PyResult<Option<Vec<T>>> {
    let Some(c) = contiguous(obj)? else {
        return Ok(None);
    };
    let n = match c.shape.as_slice() {
        [n, w] if *w == width => *n,
        [0] => 0,
        _ => {
            return Err(PyTypeError::new_err(format!(
                "expected an N×{width} array, got shape {:?}",
                c.shape
            )));
        }
    };
    let total = n * width;
    if total == 0 {
        return Ok(Some(Vec::new()));
    }
    if c.elem == Elem::U64 {
        // SAFETY: the array object is alive (we hold a reference and the GIL) and holds
        // `total` contiguous, aligned u64s at `ptr`. Rows are read straight from its memory.
        let values = unsafe { std::slice::from_raw_parts(c.ptr as *const u64, total) };
        return Ok(Some(flat(values)));
    }
    let mut out = Vec::with_capacity(n);
    let mut buf = vec![0u64; width];
    for r in 0..n {
        for (k, slot) in buf.iter_mut().enumerate() {
            // SAFETY: as above, `r * width + k < total` elements of the array's type.
            let v = unsafe { at(&c, r * width + k) };
            *slot = u64::try_from(v).map_err(|_| {
                PyTypeError::new_err(format!(
                    "descriptor field {v} is not a valid address/length/device"
                ))
            })?;
        }
        out.push(row(&buf));
    }
    Ok(Some(out))
}

/// The elements of a 1-D integer array read in place as i32 indices (values outside i32 are
/// kept as -1, reported by the caller as out of range), or `None` if `obj` is not one.
pub fn indices(obj: &Bound<'_, PyAny>) -> PyResult<Option<Vec<i32>>> {
    let Some(c) = contiguous(obj)? else {
        return Ok(None);
    };
    let [n] = c.shape.as_slice() else {
        return Err(PyTypeError::new_err(format!(
            "index arrays must be 1-D, got shape {:?}",
            c.shape
        )));
    };
    /// Converts `n` contiguous `T`s at `ptr` to i32 indices.
    ///
    /// # Safety
    /// `ptr` must point at `n` live, aligned `T`s.
    unsafe fn convert<T: Copy>(ptr: usize, n: usize, f: impl Fn(T) -> i32) -> Vec<i32> {
        // SAFETY: per the contract above.
        unsafe { std::slice::from_raw_parts(ptr as *const T, n) }
            .iter()
            .map(|&v| f(v))
            .collect()
    }
    let n = *n;
    // SAFETY: the array object is alive (we hold a reference and the GIL) and holds `n`
    // contiguous elements of its type at `ptr`, aligned (checked in `contiguous`).
    Ok(Some(unsafe {
        match c.elem {
            Elem::I32 => convert::<i32>(c.ptr, n, |v| v),
            Elem::U32 => convert::<u32>(c.ptr, n, |v| i32::try_from(v).unwrap_or(-1)),
            Elem::I64 => convert::<i64>(c.ptr, n, |v| i32::try_from(v).unwrap_or(-1)),
            Elem::U64 => convert::<u64>(c.ptr, n, |v| i32::try_from(v).unwrap_or(-1)),
        }
    }))
}

/// Indices from a numpy array or any sequence of ints.
pub fn index_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i32>> {
    if let Some(v) = indices(obj)? {
        return Ok(v);
    }
    let v: Vec<i64> = obj.extract().map_err(|_| {
        PyTypeError::new_err("indices must be a list of ints or a 1-D integer array")
    })?;
    Ok(v.into_iter()
        .map(|i| i32::try_from(i).unwrap_or(-1))
        .collect())
}
