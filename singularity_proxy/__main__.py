import sys

from singularity_proxy.cli import main

sys.exit(main())
