// Python view of the PTX engine's loader: lets tools and tests inspect what a
// PTX module declares without a driver.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "ptx/engine.h"

namespace py = pybind11;

void bind_ptx(py::module_& m) {
  py::register_exception<std::invalid_argument>(m, "PtxError", PyExc_ValueError);
  m.def(
      "ptx_kernels",
      [](const std::string& text) {
        std::string error;
        auto program = simgpu::ptx::Program::load(text, error);
        if (!program) throw std::invalid_argument(error);
        py::list out;
        for (const auto& k : program->kernels()) {
          py::dict d;
          d["name"] = k.name;
          d["param_bytes"] = k.param_bytes;
          d["static_shared_bytes"] = k.static_shared_bytes;
          d["num_regs"] = k.num_regs;
          py::list params;
          for (const auto& p : k.params) params.append(py::make_tuple(p.offset, p.size, p.align));
          d["params"] = params;
          out.append(d);
        }
        return out;
      },
      py::arg("ptx"), "Parse PTX text and describe its kernels; raises PtxError naming what is not supported.");
}
