import os
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TESTS)  # helpers
sys.path.insert(1, os.path.dirname(TESTS))  # the repository: reproduce, analysis
os.environ.setdefault('OMP_NUM_THREADS', '2')
