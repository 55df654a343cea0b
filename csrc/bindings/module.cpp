// singularity_proxy._core: one file per concept; this one only assembles them.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_ptx(py::module_& m);
void bind_control(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "Native parts of Singularity (PTX engine inspection, later the transport and images)";
  m.attr("CUDA_VERSION") = 13000;
  bind_ptx(m);
  bind_control(m);
}
