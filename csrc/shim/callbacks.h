// The app's side of host functions (custom_launch.cpp): the thread that runs
// the callbacks the proxy posts.  Started by whatever can make the proxy post
// one: cuLaunchHostFunc, cuStreamAddCallback, host graph nodes.
#pragma once

namespace sing::shim {

void ensure_callback_thread();

}  // namespace sing::shim
