//! The classes the encoder recognises, found without importing anything: a library's class
//! is looked up in `sys.modules` ([`LoadedClass`]), so when the library is not loaded no
//! argument can be one of its objects and the check costs one dict lookup. One table for
//! the data rules (`data.rs`) and the object rules (`objects.rs`) alike.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyType};

/// A class of a module that fastcache never imports itself: found through `sys.modules`
/// once its module is loaded, then remembered.
pub(crate) struct LoadedClass {
    module: &'static str,
    path: &'static str,
    /// The module name as a Python string, made once: the `sys.modules` probe of a library
    /// that is not loaded is then a single dict lookup, no allocation.
    module_key: PyOnceLock<Py<PyString>>,
    cell: PyOnceLock<Py<PyType>>,
}

impl LoadedClass {
    pub(crate) const fn new(module: &'static str, path: &'static str) -> Self {
        LoadedClass {
            module,
            path,
            module_key: PyOnceLock::new(),
            cell: PyOnceLock::new(),
        }
    }

    /// The class, or `None` while its module is not (fully) loaded.
    pub(crate) fn get<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyType>> {
        if let Some(ty) = self.cell.get(py) {
            return Some(ty.bind(py).clone());
        }
        let key = self
            .module_key
            .get_or_init(py, || PyString::intern(py, self.module).unbind());
        let module = sys_modules(py).get_item(key.bind(py)).ok()??;
        let mut found = module;
        for part in self.path.split('.') {
            found = found.getattr(part).ok()?;
        }
        let ty = found.cast_into::<PyType>().ok()?;
        let _ = self.cell.set(py, ty.clone().unbind());
        Some(ty)
    }

    /// Whether `obj`'s real type (not its `__class__`, which mocks and proxies fake) is this
    /// class or a subclass of it.
    pub(crate) fn has_instance(&self, obj: &Bound<'_, PyAny>) -> bool {
        match self.get(obj.py()) {
            Some(ty) => obj.get_type().is_subclass(&ty).unwrap_or(false),
            None => false,
        }
    }
}

pub(crate) fn sys_modules(py: Python<'_>) -> Bound<'_, PyDict> {
    static MODULES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    MODULES
        .get_or_init(py, || {
            py.import("sys")
                .and_then(|sys| sys.getattr("modules"))
                .and_then(|m| Ok(m.cast_into::<PyDict>()?))
                .map(Bound::unbind)
                .unwrap_or_else(|_| PyDict::new(py).unbind())
        })
        .bind(py)
        .clone()
}

/// A function of an always-available standard module, imported on first use.
pub(crate) fn stdlib<'py>(
    cell: &'static PyOnceLock<Py<PyAny>>,
    py: Python<'py>,
    module: &str,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import(module)?.getattr(name)?.unbind())
    })
    .map(|f| f.bind(py).clone())
}

pub(crate) static MOCK: LoadedClass = LoadedClass::new("unittest.mock", "NonCallableMock");
pub(crate) static ENUM: LoadedClass = LoadedClass::new("enum", "Enum");
pub(crate) static UUID: LoadedClass = LoadedClass::new("uuid", "UUID");
pub(crate) static PATTERN: LoadedClass = LoadedClass::new("re", "Pattern");
pub(crate) static PARTIAL: LoadedClass = LoadedClass::new("functools", "partial");
pub(crate) static STRING_IO: LoadedClass = LoadedClass::new("io", "StringIO");
pub(crate) static BYTES_IO: LoadedClass = LoadedClass::new("io", "BytesIO");
pub(crate) static IO_BASE: LoadedClass = LoadedClass::new("io", "IOBase");
pub(crate) static TEMP_FILE: LoadedClass = LoadedClass::new("tempfile", "_TemporaryFileWrapper");
pub(crate) static ARRAY: LoadedClass = LoadedClass::new("array", "array");
pub(crate) static PYDANTIC: LoadedClass = LoadedClass::new("pydantic", "BaseModel");
pub(crate) static PYDANTIC_V1: LoadedClass = LoadedClass::new("pydantic.v1", "BaseModel");
pub(crate) static NUMPY_UFUNC: LoadedClass = LoadedClass::new("numpy", "ufunc");
pub(crate) static METHOD: LoadedClass = LoadedClass::new("types", "MethodType");
pub(crate) static BUILTIN_METHOD: LoadedClass = LoadedClass::new("types", "BuiltinMethodType");
pub(crate) static CELL: LoadedClass = LoadedClass::new("types", "CellType");
pub(crate) static DEFAULT_DICT: LoadedClass = LoadedClass::new("collections", "defaultdict");
pub(crate) static PROPERTY: LoadedClass = LoadedClass::new("builtins", "property");
pub(crate) static CLASS_METHOD: LoadedClass = LoadedClass::new("builtins", "classmethod");
pub(crate) static STATIC_METHOD: LoadedClass = LoadedClass::new("builtins", "staticmethod");
/// The objects libraries describe a class's fields with (found in class bodies).
pub(crate) static FIELD_SPECS: [LoadedClass; 5] = [
    LoadedClass::new("dataclasses", "Field"),
    LoadedClass::new("functools", "cached_property"),
    LoadedClass::new("pydantic.fields", "FieldInfo"),
    LoadedClass::new("pydantic.fields", "ModelPrivateAttr"),
    LoadedClass::new("attr", "Attribute"),
];
pub(crate) static DESCRIPTORS: [LoadedClass; 6] = [
    LoadedClass::new("types", "MethodDescriptorType"),
    LoadedClass::new("types", "WrapperDescriptorType"),
    LoadedClass::new("types", "MethodWrapperType"),
    LoadedClass::new("types", "GetSetDescriptorType"),
    LoadedClass::new("types", "MemberDescriptorType"),
    LoadedClass::new("types", "ClassMethodDescriptorType"),
];

// Data libraries (data.rs).
pub(crate) static NDARRAY: LoadedClass = LoadedClass::new("numpy", "ndarray");
pub(crate) static NUMPY_SCALAR: LoadedClass = LoadedClass::new("numpy", "generic");
pub(crate) static NUMPY_DTYPE: LoadedClass = LoadedClass::new("numpy", "dtype");
pub(crate) static MASKED_ARRAY: LoadedClass = LoadedClass::new("numpy.ma", "MaskedArray");
pub(crate) static PD_SERIES: LoadedClass = LoadedClass::new("pandas", "Series");
pub(crate) static PD_FRAME: LoadedClass = LoadedClass::new("pandas", "DataFrame");
pub(crate) static PD_INDEX: LoadedClass = LoadedClass::new("pandas", "Index");
pub(crate) static PD_RANGE_INDEX: LoadedClass = LoadedClass::new("pandas", "RangeIndex");
pub(crate) static PD_MULTI_INDEX: LoadedClass = LoadedClass::new("pandas", "MultiIndex");
pub(crate) static PD_CATEGORICAL: LoadedClass = LoadedClass::new("pandas", "Categorical");
pub(crate) static PL_FRAME: LoadedClass = LoadedClass::new("polars", "DataFrame");
pub(crate) static PL_SERIES: LoadedClass = LoadedClass::new("polars", "Series");
pub(crate) static PIL_IMAGE: LoadedClass = LoadedClass::new("PIL.Image", "Image");
