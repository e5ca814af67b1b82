//! Encoding of data arguments by their whole content: buffers (bytearray, memoryview,
//! array.array, any buffer exporter), numpy arrays and scalars, pandas Series / DataFrame /
//! Index, polars DataFrame / Series, and PIL images. No sampling anywhere.
//!
//! Bytes are read through the buffer protocol: the export pins the memory (and the size of
//! resizable exporters) until it is released, so a large buffer is hashed with the
//! interpreter detached (`py.detach`), letting other threads run Python meanwhile. A
//! non-contiguous array is hashed by walking its strides into a bounded scratch block, in
//! logical C order, so it keys like its contiguous copy without a full copy being made.
//!
//! numpy, pandas, polars and PIL are never imported here: their classes come from
//! `sys.modules` (`LoadedClass`), and their objects are driven through public methods.

use pyo3::buffer::PyUntypedBuffer;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyMemoryView, PyTuple, PyType};

use super::classes::{
    MASKED_ARRAY, NDARRAY, NUMPY_DTYPE, PD_CATEGORICAL, PD_FRAME, PD_INDEX, PD_MULTI_INDEX,
    PD_RANGE_INDEX, PD_SERIES, PIL_IMAGE, PL_FRAME, PL_SERIES,
};
use super::{type_fqn, Encoder};
use crate::bindings::errors::CacheError;
use crate::bindings::exit_safe;
use crate::engine::buffer_hash::{digest, StridedView, DETACH_LIMIT, INLINE_LIMIT};
use crate::engine::key::Tag;

/// A memoryview of `obj` when its export is 0-dimensional.
fn zero_dim_view<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    let py = obj.py();
    let view = py.get_type::<PyMemoryView>().call1((obj,)).ok()?;
    let ndim: usize = view.getattr(intern!(py, "ndim")).ok()?.extract().ok()?;
    (ndim == 0).then_some(view)
}

/// Raw pointer of a contiguous export, carried into a detached closure.
struct Contiguous {
    ptr: *const u8,
    len: usize,
}

// SAFETY: only read inside `py.detach` while the `PyUntypedBuffer` it came from is alive
// (see `Encoder::buffer_data`); it owns nothing.
unsafe impl Send for Contiguous {}

impl Encoder<'_> {
    /// A buffer exporter that has no richer rule (memoryview, array.array, mmap, …): its
    /// class, element format, item size, shape, then the data in logical order.
    pub(crate) fn buffer(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let py = obj.py();
        self.writer
            .tagged_bytes(Tag::Buffer, type_fqn(&obj.get_type()).as_bytes());
        match PyUntypedBuffer::get(obj) {
            Ok(buf) => {
                self.writer.raw_bytes(buf.format().to_bytes());
                self.writer.len(buf.item_size());
                self.shape(buf.shape());
                self.export_data(obj, &buf, Tag::Data)
            }
            Err(err) => {
                let view = zero_dim_view(obj).ok_or(err)?;
                let format = view.getattr(intern!(py, "format"))?;
                self.writer.raw_bytes(format.str()?.to_str()?.as_bytes());
                self.writer
                    .len(view.getattr(intern!(py, "itemsize"))?.extract()?);
                self.shape(&[]);
                self.zero_dim_data(&view, Tag::Data)
            }
        }
    }

    /// The data of `obj`'s buffer export, under `tag` (used for bytearray's body).
    pub(crate) fn buffer_data(
        &mut self,
        obj: &Bound<'_, PyAny>,
        tag: Tag,
    ) -> Result<(), CacheError> {
        match PyUntypedBuffer::get(obj) {
            Ok(buf) => self.export_data(obj, &buf, tag),
            Err(err) => {
                let view = zero_dim_view(obj).ok_or(err)?;
                self.zero_dim_data(&view, tag)
            }
        }
    }

    /// A 0-dimensional export (one item, no shape array), which PyO3's buffer wrapper
    /// refuses: its bytes through `memoryview.tobytes()`.
    fn zero_dim_data(&mut self, view: &Bound<'_, PyAny>, tag: Tag) -> Result<(), CacheError> {
        let py = view.py();
        let bytes = view.call_method0(intern!(py, "tobytes"))?;
        let bytes = bytes.cast::<PyBytes>().map_err(PyErr::from)?;
        self.immutable_bytes(py, tag, bytes.as_bytes());
        Ok(())
    }

    fn shape(&mut self, shape: &[usize]) {
        self.writer.len(shape.len());
        for &d in shape {
            self.writer.len(d);
        }
    }

    /// Writes the bytes of an export in logical C order: verbatim when short, else their
    /// digest, computed detached from the interpreter when large.
    fn export_data(
        &mut self,
        obj: &Bound<'_, PyAny>,
        buf: &PyUntypedBuffer,
        tag: Tag,
    ) -> Result<(), CacheError> {
        let py = obj.py();
        if buf.suboffsets().is_some_and(|s| s.iter().any(|&o| o >= 0)) {
            // Indirect (PIL-style) layouts are rare: let CPython flatten them into bytes.
            let flat = py
                .get_type::<PyMemoryView>()
                .call1((obj,))?
                .call_method0(intern!(py, "tobytes"))?;
            let flat = flat.cast::<PyBytes>().map_err(PyErr::from)?;
            self.immutable_bytes(py, tag, flat.as_bytes());
            return Ok(());
        }
        let len = buf.len_bytes();
        if buf.is_c_contiguous() || len == 0 {
            let data = Contiguous {
                ptr: buf.buf_ptr() as *const u8,
                len,
            };
            // SAFETY: a C-contiguous export's `len_bytes` bytes start at `buf_ptr` and stay
            // allocated (and the exporter unresizable) until `buf` is released, which happens
            // after this function returns. Another thread may write to a mutable exporter
            // meanwhile; that can only give a meaningless digest for data that was changing
            // during the call, never an invalid read.
            let read = move || {
                let data = data;
                unsafe { std::slice::from_raw_parts(data.ptr, data.len) }
            };
            if len >= DETACH_LIMIT {
                let d = exit_safe::detach(py, move || digest(read()));
                self.writer.tagged_digest(tag, len, &d);
            } else {
                self.writer.tagged_bytes(tag, read());
            }
            return Ok(());
        }
        // SAFETY: shape and strides come from the live export and describe readable
        // elements of `item_size` bytes from `buf_ptr` (the buffer protocol's contract);
        // the view is used only while `buf` is alive (same argument as above).
        let view = unsafe {
            StridedView::new(
                buf.buf_ptr() as *const u8,
                buf.shape(),
                buf.strides(),
                buf.item_size(),
            )
        };
        if len < INLINE_LIMIT {
            self.writer.tagged_bytes(tag, &view.to_vec());
        } else if len >= DETACH_LIMIT {
            let d = exit_safe::detach(py, move || view.digest());
            self.writer.tagged_digest(tag, len, &d);
        } else {
            let d = view.digest();
            self.writer.tagged_digest(tag, len, &d);
        }
        Ok(())
    }

    /// A numpy array; `false` when `obj` is not one (or numpy is not loaded).
    pub(crate) fn ndarray_if_any(&mut self, obj: &Bound<'_, PyAny>) -> Result<bool, CacheError> {
        if NDARRAY.has_instance(obj) {
            self.ndarray(obj)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A numpy scalar (`np.int64(1)` is not `1`): class, dtype, then its bytes.
    pub(crate) fn numpy_scalar(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let py = obj.py();
        let dtype = obj.getattr(intern!(py, "dtype"))?;
        self.writer
            .tagged_bytes(Tag::NumpyScalar, type_fqn(&obj.get_type()).as_bytes());
        self.dtype(&dtype)?;
        if dtype.getattr(intern!(py, "hasobject"))?.is_truthy()? {
            // A structured scalar holding objects: its items, not their addresses.
            return self.value(&obj.call_method0(intern!(py, "item"))?);
        }
        let bytes = obj.call_method0(intern!(py, "tobytes"))?;
        self.buffer_data(&bytes, Tag::Data)
    }

    fn dtype(&mut self, dtype: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let py = dtype.py();
        // `str` names structured fields and datetime units; `.str` adds the byte order.
        self.writer.raw_bytes(dtype.str()?.to_str()?.as_bytes());
        let code = dtype.getattr(intern!(py, "str"))?;
        self.writer.raw_bytes(code.str()?.to_str()?.as_bytes());
        Ok(())
    }

    /// A numpy array: class, dtype, shape, then every byte of its data in logical order
    /// (or, for object and variable-width string dtypes, every item encoded by value).
    /// Masked arrays add their mask.
    fn ndarray(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let py = obj.py();
        let dtype = obj.getattr(intern!(py, "dtype"))?;
        self.writer
            .tagged_bytes(Tag::NdArray, type_fqn(&obj.get_type()).as_bytes());
        self.dtype(&dtype)?;
        let shape: Vec<usize> = obj.getattr(intern!(py, "shape"))?.extract()?;
        self.shape(&shape);
        let has_objects = dtype.getattr(intern!(py, "hasobject"))?.is_truthy()?;
        let kind: String = dtype.getattr(intern!(py, "kind"))?.extract()?;
        if has_objects || kind == "T" {
            // Items are references (or numpy 2's StringDType arena): encode the values.
            let items = obj
                .call_method0(intern!(py, "ravel"))?
                .call_method0(intern!(py, "tolist"))?;
            self.value(&items)?;
        } else {
            if self.buffer_data(obj, Tag::Data).is_err() {
                // datetime64/timedelta64 refuse buffer export; an equal-width bytes view of
                // the same memory does not.
                let item_size: usize = dtype.getattr(intern!(py, "itemsize"))?.extract()?;
                let view = obj.call_method1(intern!(py, "view"), (format!("S{item_size}"),))?;
                self.buffer_data(&view, Tag::Data)?;
            }
        }
        if MASKED_ARRAY.has_instance(obj) {
            let mask = obj.getattr(intern!(py, "mask"))?;
            self.value(&mask)?;
        }
        Ok(())
    }

    /// pandas, polars and PIL objects; `false` when `obj` is none of them.
    pub(crate) fn dataframe_like(&mut self, obj: &Bound<'_, PyAny>) -> Result<bool, CacheError> {
        let py = obj.py();
        let ty = obj.get_type();
        if PD_FRAME.has_instance(obj) {
            self.pandas_frame(obj, &ty)?;
        } else if PD_SERIES.has_instance(obj) {
            self.writer
                .tagged_bytes(Tag::PandasSeries, type_fqn(&ty).as_bytes());
            self.value(&obj.getattr(intern!(py, "name"))?)?;
            self.pandas_index(&obj.getattr(intern!(py, "index"))?)?;
            self.pandas_values(obj)?;
        } else if PD_INDEX.has_instance(obj) {
            self.pandas_index(obj)?;
        } else if PL_FRAME.has_instance(obj) || PL_SERIES.has_instance(obj) {
            self.polars(obj, &ty)?;
        } else if PIL_IMAGE.has_instance(obj) {
            self.image(obj, &ty)?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// A DataFrame: columns (names, their order and type), row index, then each column's
    /// dtype and values, every row of every column.
    fn pandas_frame(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Bound<'_, PyType>,
    ) -> Result<(), CacheError> {
        let py = obj.py();
        self.writer
            .tagged_bytes(Tag::PandasFrame, type_fqn(ty).as_bytes());
        self.pandas_index(&obj.getattr(intern!(py, "columns"))?)?;
        self.pandas_index(&obj.getattr(intern!(py, "index"))?)?;
        let columns: Vec<_> = obj
            .call_method0(intern!(py, "items"))?
            .try_iter()?
            .collect::<PyResult<_>>()?;
        self.writer.len(columns.len());
        for pair in columns {
            let column = pair.cast::<PyTuple>().map_err(PyErr::from)?.get_item(1)?;
            self.pandas_values(&column)?;
        }
        Ok(())
    }

    fn pandas_index(&mut self, index: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let py = index.py();
        self.writer
            .tagged_bytes(Tag::PandasIndex, type_fqn(&index.get_type()).as_bytes());
        self.value(&index.getattr(intern!(py, "names"))?)?;
        if PD_RANGE_INDEX.has_instance(index) {
            // A range: three numbers, not a million materialised ones.
            for attr in [
                intern!(py, "start"),
                intern!(py, "stop"),
                intern!(py, "step"),
            ] {
                self.value(&index.getattr(attr)?)?;
            }
        } else if PD_MULTI_INDEX.has_instance(index) {
            let levels: Vec<_> = index
                .getattr(intern!(py, "levels"))?
                .try_iter()?
                .collect::<PyResult<_>>()?;
            self.writer.len(levels.len());
            for level in &levels {
                self.pandas_index(level)?;
            }
            let codes: Vec<_> = index
                .getattr(intern!(py, "codes"))?
                .try_iter()?
                .collect::<PyResult<_>>()?;
            self.writer.len(codes.len());
            for code in &codes {
                self.value(code)?;
            }
        } else {
            self.pandas_values(index)?;
        }
        Ok(())
    }

    /// The dtype and every value of a Series or Index: numpy-backed data through its
    /// buffer; extension arrays through their own buffers where pandas exposes them
    /// (Arrow-backed, masked, categorical, datetime-with-timezone), else item by item.
    fn pandas_values(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let py = obj.py();
        let dtype = obj.getattr(intern!(py, "dtype"))?;
        self.writer.raw_bytes(dtype.str()?.to_str()?.as_bytes());
        if NUMPY_DTYPE.has_instance(&dtype) {
            // A numpy dtype: `to_numpy` is a view of the column, no copy.
            let kwargs = PyDict::new(py);
            kwargs.set_item(intern!(py, "copy"), false)?;
            let to_numpy = obj.getattr(intern!(py, "to_numpy"))?;
            let values = exit_safe::call(&to_numpy, &PyTuple::empty(py), Some(&kwargs))?;
            return self.ndarray(&values);
        }
        let array = obj.getattr(intern!(py, "array"))?;
        self.extension_array(&array)
    }

    fn extension_array(&mut self, array: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let py = array.py();
        if let Some(chunked) = array.getattr_opt(intern!(py, "_pa_array"))? {
            self.writer.tag(Tag::Arrow);
            self.writer.raw_bytes(
                chunked
                    .getattr(intern!(py, "type"))?
                    .str()?
                    .to_str()?
                    .as_bytes(),
            );
            let chunks: Vec<_> = chunked
                .getattr(intern!(py, "chunks"))?
                .try_iter()?
                .collect::<PyResult<_>>()?;
            self.writer.len(chunks.len());
            for chunk in &chunks {
                self.arrow_array(chunk)?;
            }
            return Ok(());
        }
        if PD_CATEGORICAL.has_instance(array) {
            self.writer.tag(Tag::Categorical);
            self.value(&array.getattr(intern!(py, "codes"))?)?;
            self.pandas_index(&array.getattr(intern!(py, "categories"))?)?;
            return self.value(&array.getattr(intern!(py, "ordered"))?);
        }
        if let (Some(data), Some(mask)) = (
            array.getattr_opt(intern!(py, "_data"))?,
            array.getattr_opt(intern!(py, "_mask"))?,
        ) {
            if NDARRAY.has_instance(&data) && NDARRAY.has_instance(&mask) {
                self.ndarray(&data)?;
                return self.ndarray(&mask);
            }
        }
        if let Some(backing) = array.getattr_opt(intern!(py, "_ndarray"))? {
            if NDARRAY.has_instance(&backing) {
                return self.ndarray(&backing);
            }
        }
        // Anything else: every item by value.
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "dtype"), py.get_type::<PyAny>())?;
        let to_numpy = array.getattr(intern!(py, "to_numpy"))?;
        let items = exit_safe::call(&to_numpy, &PyTuple::empty(py), Some(&kwargs))?;
        self.ndarray(&items)
    }

    /// One Arrow array: its offset, length, null count and every physical buffer (children
    /// included, as `buffers()` lists them), plus the dictionary of a dictionary array.
    fn arrow_array(&mut self, chunk: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let py = chunk.py();
        for attr in [intern!(py, "offset"), intern!(py, "null_count")] {
            self.value(&chunk.getattr(attr)?)?;
        }
        self.value(&chunk.call_method0(intern!(py, "__len__"))?)?;
        let buffers: Vec<_> = chunk
            .call_method0(intern!(py, "buffers"))?
            .try_iter()?
            .collect::<PyResult<_>>()?;
        self.writer.len(buffers.len());
        for buffer in &buffers {
            if buffer.is_none() {
                self.writer.tag(Tag::None);
            } else {
                self.buffer_data(buffer, Tag::Data)?;
            }
        }
        match chunk.getattr_opt(intern!(py, "dictionary"))? {
            Some(dictionary) if !dictionary.is_none() => self.arrow_array(&dictionary),
            _ => {
                self.writer.tag(Tag::None);
                Ok(())
            }
        }
    }

    /// polars: the Arrow IPC serialisation of the frame (schema with names and dtypes, then
    /// every buffer), hashed through its buffer.
    fn polars(&mut self, obj: &Bound<'_, PyAny>, ty: &Bound<'_, PyType>) -> Result<(), CacheError> {
        let py = obj.py();
        self.writer
            .tagged_bytes(Tag::Polars, type_fqn(ty).as_bytes());
        let frame = if PL_SERIES.has_instance(obj) {
            obj.call_method0(intern!(py, "to_frame"))?
        } else {
            obj.clone()
        };
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "compression"), intern!(py, "uncompressed"))?;
        // polars writes with the interpreter released.
        let write_ipc = frame.getattr(intern!(py, "write_ipc"))?;
        let none = PyTuple::new(py, [py.None()])?;
        let sink = exit_safe::call(&write_ipc, &none, Some(&kwargs))?;
        let view = sink.call_method0(intern!(py, "getbuffer"))?;
        let result = self.buffer_data(&view, Tag::Data);
        // Release the export so the BytesIO may be freed or resized.
        view.call_method0(intern!(py, "release"))?;
        result
    }

    /// A PIL image: mode, size (so 10×20 and 20×10 differ), palette, and every pixel byte.
    fn image(&mut self, obj: &Bound<'_, PyAny>, ty: &Bound<'_, PyType>) -> Result<(), CacheError> {
        let py = obj.py();
        self.writer
            .tagged_bytes(Tag::Image, type_fqn(ty).as_bytes());
        self.value(&obj.getattr(intern!(py, "mode"))?)?;
        self.value(&obj.getattr(intern!(py, "size"))?)?;
        self.value(&obj.call_method0(intern!(py, "getpalette"))?)?;
        let pixels = obj.call_method0(intern!(py, "tobytes"))?;
        self.buffer_data(&pixels, Tag::Data)
    }
}
