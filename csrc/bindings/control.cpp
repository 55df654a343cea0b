// The proxy's management messages (wire/control.h) as Python sees them: the
// numbers and sizes come from the header itself, so the Python side
// (singularity_proxy/proxy_control.py) cannot drift from it.
#include <pybind11/pybind11.h>

#include <cuda.h>

#include "wire/control.h"

namespace py = pybind11;

void bind_control(py::module_& m) {
  using namespace sing::wire;
  auto c = m.def_submodule("control", "Management messages of singproxy-server (wire/control.h)");
  c.attr("MSG_MANAGE") = uint32_t(MsgType::Manage);
  c.attr("MSG_MANAGE_REPLY") = uint32_t(MsgType::ManageReply);
  c.attr("OP_CHECKPOINT") = uint32_t(ManageOp::Checkpoint);
  c.attr("OP_RESUME") = uint32_t(ManageOp::Resume);
  c.attr("OP_RELEASE") = uint32_t(ManageOp::Release);
  c.attr("OP_RESTORE") = uint32_t(ManageOp::Restore);
  c.attr("OP_STATUS") = uint32_t(ManageOp::Status);
  // Status of a job whose app has not reattached yet (a CUresult, from cuda.h).
  c.attr("RESULT_NOT_READY") = int(CUDA_ERROR_NOT_READY);
  c.attr("MANAGE_SIZE") = sizeof(Manage);
  c.attr("MANAGE_REPLY_SIZE") = sizeof(ManageReply);
  c.attr("JOB_BYTES") = sizeof(Manage::job);
  c.attr("PATH_BYTES") = sizeof(Manage::path);
  c.attr("MESSAGE_BYTES") = sizeof(ManageReply::message);
}
