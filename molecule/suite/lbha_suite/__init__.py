# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the molecule suite: the scenario from its inventory, the hosts, the planes."""
